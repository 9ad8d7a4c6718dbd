package controller

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

// TestMayRead: a data plane's ServiceAccount reads its own Gateway only:
// not a Gateway of the same name elsewhere, not a neighbour's.
func TestMayRead(t *testing.T) {
	id := configstream.Identity{Namespace: "apps", ServiceAccount: "rauta-web"}
	for gateway, want := range map[string]bool{
		"apps/web":   true,
		"other/web":  false,
		"apps/web2":  false,
		"apps/":      false,
		"web":        false,
		"apps/rauta": false,
	} {
		if got := mayRead(id, gateway); got != want {
			t.Errorf("mayRead(%+v, %q) = %v, want %v", id, gateway, got, want)
		}
	}
}

func TestProvisionerFlagsRequired(t *testing.T) {
	err := Run(t.Context(), Config{Provisioner: ProvisionerKubernetes}, nil)
	if err == nil {
		t.Fatal("the kubernetes provisioner ran without a namespace, Service, listen address or image")
	}
	if err := Run(t.Context(), Config{Provisioner: "bogus"}, nil); err == nil {
		t.Fatal("an unknown provisioner was accepted")
	}
}

func TestUnassigned(t *testing.T) {
	ip := gwv1.IPAddressType
	host := gwv1.HostnameAddressType
	gw := &gwv1.Gateway{Spec: gwv1.GatewaySpec{Addresses: []gwv1.GatewaySpecAddress{
		{Type: &ip, Value: "127.0.200.5"}, {Value: ""}, {Type: &host, Value: "example.com"},
	}}}
	if got := unassigned(gw, []gwv1.GatewayStatusAddress{{Type: &ip, Value: "127.0.200.5"}}); got != "" {
		t.Errorf("assigned address reported unassigned: %q", got)
	}
	if got := unassigned(gw, []gwv1.GatewayStatusAddress{{Type: &ip, Value: "10.96.0.7"}}); got != "127.0.200.5" {
		t.Errorf("unassigned = %q, want 127.0.200.5 (a ClusterIP is not the address asked for)", got)
	}
}

// fixedAuth accepts one token as the data plane of apps/web.
type fixedAuth struct{}

func (fixedAuth) Authenticate(_ context.Context, token string) (configstream.Identity, error) {
	if token != "tok" {
		return configstream.Identity{}, configstream.ErrUnauthenticated
	}
	return configstream.Identity{Namespace: "apps", ServiceAccount: "rauta-web", Pod: "rauta-web-1"}, nil
}

// TestOverlayProgrammed: Programmed follows what a data-plane pod reports
// over the real stream: Pending until a pod serves the Gateway's generation,
// True then, and a listener whose port the pod could not bind is
// Programmed=False on that listener only.
// streamServer serves srv's config stream over TLS on loopback and returns
// what a data plane needs to dial it.
func streamServer(t *testing.T, srv *configstream.Server) (addr string, ca *configstream.CA) {
	t.Helper()
	ca, err := configstream.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServing([]string{"ctrl.test"}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String(), ca
}

// dataPlane runs a config stream client for gateway that answers every
// Config with rep, until ctx ends.
func dataPlane(ctx context.Context, t *testing.T, addr string, ca *configstream.CA, gateway, pod string, rep configstream.Report) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := configstream.Pool(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	cl := &configstream.Client{Address: addr, ServerName: "ctrl.test", RootCAs: pool, TokenFile: tokenFile, Gateway: gateway, Pod: pod,
		Apply: func(configstream.Config) configstream.Report { return rep }}
	go func() { _ = cl.Run(ctx) }()
}

func TestOverlayProgrammed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &configstream.Server{Auth: fixedAuth{}, Authorize: mayRead}
	addr, ca := streamServer(t, srv)
	c := &Controller{prov: &provisioner{stream: srv}}

	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", Generation: 3}, Spec: gwv1.GatewaySpec{Listeners: []gwv1.Listener{
		{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
		{Name: "alt", Port: 8080, Protocol: gwv1.HTTPProtocolType},
	}}}
	ip := gwv1.IPAddressType
	status := func() translate.GatewayStatus {
		gs := translate.GatewayStatus{Namespace: "apps", Name: "web", Status: gwv1.GatewayStatus{
			Addresses:  []gwv1.GatewayStatusAddress{{Type: &ip, Value: "127.0.200.1"}},
			Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}, {Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed"}},
		}}
		for _, l := range gw.Spec.Listeners {
			gs.Status.Listeners = append(gs.Status.Listeners, gwv1.ListenerStatus{Name: l.Name,
				Conditions: []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed"}}})
		}
		c.overlayProgrammed(&gs, gw, true)
		return gs
	}
	programmed := func(conds []metav1.Condition) *metav1.Condition {
		return meta.FindStatusCondition(conds, "Programmed")
	}

	if p := programmed(status().Status.Conditions); p.Status != metav1.ConditionFalse || p.Reason != "Pending" {
		t.Fatalf("no data plane yet: Programmed %s %s, want False Pending", p.Status, p.Reason)
	}

	srv.Publish(map[string]configstream.Config{"apps/web": configstream.NewConfig("apps/web", 3, &ir.Snapshot{})})
	dataPlane(ctx, t, addr, ca, "apps/web", "rauta-web-1",
		configstream.Report{Unbound: []configstream.ListenerError{{Listener: "apps/web/8080", Error: "address already in use"}}})

	deadline := time.Now().Add(10 * time.Second)
	for {
		gs := status()
		if p := programmed(gs.Status.Conditions); p.Status == metav1.ConditionTrue {
			byName := map[gwv1.SectionName]*metav1.Condition{}
			for i := range gs.Status.Listeners {
				byName[gs.Status.Listeners[i].Name] = programmed(gs.Status.Listeners[i].Conditions)
			}
			if byName["http"].Status != metav1.ConditionTrue {
				t.Errorf("listener http: Programmed %s, want True (its port is bound)", byName["http"].Status)
			}
			if byName["alt"].Status != metav1.ConditionFalse || !strings.Contains(byName["alt"].Message, "address already in use") {
				t.Errorf("listener alt: Programmed %s %q, want False naming the bind error", byName["alt"].Status, byName["alt"].Message)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Programmed never became True: %+v", programmed(gs.Status.Conditions))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReportRestatusesWithoutTranslating: a data plane's report redoes the
// Programmed overlay of the last translation and hands it to the status
// writer by itself (no sync, which at a thousand routes would cost a whole
// translation per report), and leaves that translation as it was.
func TestReportRestatusesWithoutTranslating(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newProvisioner(nil)
	p.stream.Auth = fixedAuth{}
	addr, ca := streamServer(t, p.stream)
	c := &Controller{prov: p}
	statuses := newMailbox()
	c.startRestatus(ctx, statuses)

	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", Generation: 2},
		Spec: gwv1.GatewaySpec{Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	ip := gwv1.IPAddressType
	translated := &translate.Status{Gateways: []translate.GatewayStatus{{Namespace: "apps", Name: "web", Status: gwv1.GatewayStatus{
		Addresses:  []gwv1.GatewayStatusAddress{{Type: &ip, Value: "127.0.200.1"}},
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}, {Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed"}},
	}}}}
	p.stream.Publish(map[string]configstream.Config{"apps/web": configstream.NewConfig("apps/web", 2, &ir.Snapshot{})})
	p.pubMu.Lock()
	p.last = &published{status: translated, gateways: map[string]*gwv1.Gateway{"apps/web": gw}, streaming: true}
	c.publishStatus(statuses, p.last)
	p.pubMu.Unlock()
	programmed := func(st *translate.Status) *metav1.Condition {
		return meta.FindStatusCondition(st.Gateways[0].Status.Conditions, "Programmed")
	}
	takeCtx, takeCancel := context.WithTimeout(ctx, 10*time.Second)
	defer takeCancel()
	job, ok := statuses.take(takeCtx)
	if !ok || programmed(job.status).Reason != "Pending" {
		t.Fatalf("before any report: want Programmed Pending, got %+v", job.status)
	}
	if got := programmed(translated); got.Reason != "Programmed" {
		t.Fatalf("the overlay changed the kept translation: %+v", got)
	}

	dataPlane(ctx, t, addr, ca, "apps/web", "rauta-web-1", configstream.Report{})
	for {
		job, ok := statuses.take(takeCtx)
		if !ok {
			t.Fatal("the report never produced a status with Programmed True")
		}
		if programmed(job.status).Status == metav1.ConditionTrue {
			break
		}
	}
}
