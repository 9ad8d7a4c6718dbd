package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

// reloads is rauta_config_reloads_total{result="success"}.
func reloads(t *testing.T, g *Gateway) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.reloadOK.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Apply skips a snapshot identical to the applied one (another copy of it,
// or routes with the same Fingerprints) and applies any change: a route, a
// listener field, a certificate's key (which JSON leaves out), a route's
// Fingerprint. It keeps a digest, not the snapshot.
func TestApplySkipsOnlyIdenticalSnapshots(t *testing.T) {
	g, _ := newGateway(t, Options{})
	b := backend(t)
	base := func() *ir.Snapshot { return snapshot(listener("l", 0, b)) }
	want := 0.0
	apply := func(name string, snap *ir.Snapshot, applied bool) {
		t.Helper()
		if err := g.Apply(snap, NoStatus{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if applied {
			want++
		}
		if got := reloads(t, g); got != want {
			t.Errorf("%s: %v reloads, want %v (applied: %v)", name, got, want, applied)
		}
		if g.unboundSnap != nil {
			t.Errorf("%s: the gateway keeps the snapshot with every listener bound", name)
		}
	}
	apply("first", base(), true)
	apply("a copy of the same", base(), false)

	changed := base()
	changed.Listeners[0].VirtualHosts[0].Routes[0].Match.Path.Value = "/x"
	apply("a route changed", changed, true)
	apply("the same change again", changed, false)

	hostname := base()
	hostname.Listeners[0].VirtualHosts[0].Hostname = "example.com"
	apply("a virtual host changed", hostname, true)

	fp := base()
	fp.Listeners[0].VirtualHosts[0].Routes[0].Fingerprint = "f1"
	apply("a route with a fingerprint", fp, true)
	sameFP := base()
	sameFP.Listeners[0].VirtualHosts[0].Routes[0].Fingerprint = "f1"
	sameFP.Listeners[0].VirtualHosts[0].Routes[0].Name = "the fingerprint says it is the same"
	apply("the same fingerprint", sameFP, false)
	otherFP := base()
	otherFP.Listeners[0].VirtualHosts[0].Routes[0].Fingerprint = "f2"
	apply("another fingerprint", otherFP, true)

	key := func(k string) *ir.Snapshot {
		s := base()
		s.Listeners[0].ClientValidation = nil
		s.Listeners[0].BackendClientCertificate = &ir.Certificate{Name: "ns/client", CertPEM: []byte("CERT"), KeyPEM: []byte(k)}
		return s
	}
	d1, ok1 := digestOf(key("KEY1"))
	d2, ok2 := digestOf(key("KEY2"))
	if !ok1 || !ok2 || d1 == d2 {
		t.Error("a key pair change does not change the digest")
	}
}

// On a data plane (ForgetRoutes), /config_dump shows the listeners and
// their virtual hosts but no routes.
func TestConfigDumpWithoutRoutes(t *testing.T) {
	g, _ := newGateway(t, Options{ForgetRoutes: true})
	if err := g.Apply(snapshot(listener("l", 0, backend(t))), NoStatus{}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	g.adm.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/config_dump", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `"default/gw/http"`) {
		t.Fatalf("/config_dump: %d %s", rec.Code, body)
	}
	if strings.Contains(body, `"routes"`) {
		t.Errorf("/config_dump shows routes: %s", body)
	}
}

// BenchmarkDigest is the unchanged check of a data plane's first Config at
// 10,000 HTTPRoutes (bench/routegen, 25,100 routes with fingerprints).
//
//	go test -run '^$' -bench BenchmarkDigest -benchmem ./internal/gateway/
func BenchmarkDigest(b *testing.B) {
	snap := translate.Translate(routegen.Resources(10000), translate.Options{Provisioned: true}).IR
	for i := range snap.Listeners {
		for j := range snap.Listeners[i].VirtualHosts {
			for k := range snap.Listeners[i].VirtualHosts[j].Routes {
				rt := &snap.Listeners[i].VirtualHosts[j].Routes[k]
				if rt.Fingerprint == "" {
					rt.Fingerprint = fmt.Sprintf("%016d", k) // the config stream's are 16 bytes
				}
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := digestOf(snap); !ok {
			b.Fatal("did not encode")
		}
	}
}
