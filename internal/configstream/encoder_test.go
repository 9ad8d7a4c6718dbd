package configstream

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// identified gives routegen's objects the identity the API server would,
// so a translation Cache keeps them and the IR routes carry fingerprints.
func identified(n int) (*resources.Resources, translate.Options) {
	res := routegen.Resources(n)
	i := 0
	for _, r := range res.HTTPRoutes {
		i++
		r.UID, r.Generation = types.UID(fmt.Sprintf("route-%d", i)), 1
	}
	for _, o := range res.Services {
		i++
		o.UID, o.ResourceVersion = types.UID(fmt.Sprintf("svc-%d", i)), "1"
	}
	for _, o := range res.EndpointSlices {
		i++
		o.UID, o.ResourceVersion = types.UID(fmt.Sprintf("eps-%d", i)), "1"
	}
	return res, translate.Options{Provisioned: true, Cache: &translate.Cache{}}
}

// plainFrame encodes c the way a Config was encoded before the Encoder:
// the whole IR at once, Version included.
func plainFrame(c Config) []byte {
	c.frame, c.wire = nil, nil
	return encodeFrame(message{Config: &c})
}

// The Encoder's frame is byte for byte the encoding of the whole Config
// (so versions agree with a controller that encodes at once), also when
// most routes' encodings come from its cache; routes that are no longer
// served are forgotten at the end of a round.
func TestEncoderComposesTheWholeEncoding(t *testing.T) {
	res, opts := identified(300)
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	var enc Encoder
	for round := range 3 {
		if round > 0 {
			res.HTTPRoutes[round*10].Spec.Rules[0].Matches[0].Path.Value = ptr(fmt.Sprintf("/changed-%d", round))
			res.HTTPRoutes[round*10].Generation++
		}
		if round == 2 {
			res.HTTPRoutes = res.HTTPRoutes[:200] // a hundred routes deleted
		}
		snap := translate.Translate(res, opts).IR
		c := enc.NewConfig(key, int64(round), snap)
		enc.EndRound()
		if !bytes.Equal(c.Frame(), plainFrame(c)) {
			t.Fatalf("round %d: the composed frame differs from the whole Config's encoding", round)
		}
		if want := NewConfig(key, int64(round), snap); c.Version != want.Version {
			t.Fatalf("round %d: version %s, a fresh encoder's %s", round, c.Version, want.Version)
		}
		if n, want := len(enc.routes), routeCount(snap); n != want {
			t.Errorf("round %d: the encoder holds %d route encodings, the snapshot has %d routes", round, n, want)
		}
	}
}

func routeCount(s *ir.Snapshot) int {
	n := 0
	for _, l := range s.Listeners {
		for _, vh := range l.VirtualHosts {
			n += len(vh.Routes)
		}
	}
	return n
}

// A delta rebuilds exactly the Config the whole frame carries (routes
// of the base are elided, with the base's fingerprint), is a
// fraction of its size, and is refused by a decoder that holds another
// base; a whole frame after a delta is decoded as before.
func TestDeltaRebuildsTheConfig(t *testing.T) {
	res, opts := identified(300)
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	var enc Encoder
	first := enc.NewConfig(key, 1, translate.Translate(res, opts).IR)
	res.HTTPRoutes[7].Spec.Rules[0].Matches[0].Path.Value = ptr("/changed")
	res.HTTPRoutes[7].Generation++
	res.HTTPRoutes = append(res.HTTPRoutes[:20], res.HTTPRoutes[21:]...) // one deleted
	second := enc.NewConfig(key, 2, translate.Translate(res, opts).IR)
	delta := deltaFrame(first, second)
	if delta == nil {
		t.Fatal("no delta")
	}
	if len(delta)*10 > len(second.Frame()) {
		t.Errorf("delta %d bytes, the whole frame %d: want a tenth at most", len(delta), len(second.Frame()))
	}

	var viaDelta, viaWhole frameDecoder
	before := map[string]bool{} // fingerprints of viaDelta's first Config
	knownDelta, knownWhole := map[string]ir.Route{}, map[string]ir.Route{}
	for _, d := range []*frameDecoder{&viaDelta, &viaWhole} {
		m, err := d.read(bytes.NewReader(first.Frame()), 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if d == &viaDelta {
			remember(knownDelta, m.Config.Snapshot)
			for _, rt := range m.Config.Snapshot.Listeners[0].VirtualHosts[0].Routes {
				before[rt.Fingerprint] = true
			}
		} else {
			remember(knownWhole, m.Config.Snapshot)
		}
	}
	got, err := viaDelta.read(bytes.NewReader(delta), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	want, err := viaWhole.read(bytes.NewReader(second.Frame()), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Version != second.Version || got.Config.Generation != 2 {
		t.Errorf("delta decodes to version %s generation %d, want %s 2", got.Config.Version, got.Config.Generation, second.Version)
	}
	if diff := cmp.Diff(unelide(t, knownWhole, want.Config.Snapshot), unelide(t, knownDelta, got.Config.Snapshot)); diff != "" {
		t.Fatalf("the delta's snapshot differs from the whole frame's (-whole +delta):\n%s", diff)
	}
	kept, total := 0, 0
	for _, rt := range got.Config.Snapshot.Listeners[0].VirtualHosts[0].Routes {
		total++
		if rt.Elided && before[rt.Fingerprint] {
			kept++
		}
	}
	if kept < total-5 {
		t.Errorf("%d of %d routes elided with their previous fingerprint; want all but the changed route's", kept, total)
	}
	if viaDelta.version != second.Version || len(viaDelta.fps) != routeCount(second.Snapshot) {
		t.Errorf("after the delta the decoder holds version %s and %d routes", viaDelta.version, len(viaDelta.fps))
	}

	// Another base: refused, nothing half-applied.
	var stranger frameDecoder
	if _, err := stranger.read(bytes.NewReader(delta), 64<<20); err == nil {
		t.Error("a decoder without the base accepted a delta")
	}
	// A position beyond the base: refused.
	var short frameDecoder
	if _, err := short.read(bytes.NewReader(NewConfig(key, 0, &ir.Snapshot{}).Frame()), 64<<20); err != nil {
		t.Fatal(err)
	}
	forged := deltaFrame(first, second)
	forged = bytes.Replace(forged, []byte(first.Version), []byte(short.version), 1) // same length
	if _, err := short.read(bytes.NewReader(forged), 64<<20); err == nil {
		t.Error("a delta naming routes its base does not have was accepted")
	}
	// A whole frame after a delta reuses what the delta built.
	if _, err := viaDelta.read(bytes.NewReader(first.Frame()), 64<<20); err != nil {
		t.Fatalf("a whole frame after a delta: %v", err)
	}
}

// Over a real stream, a data plane that asked for deltas gets the second
// Config as a delta and applies exactly it.
func TestStreamSendsDeltas(t *testing.T) {
	srv := &Server{Auth: tokens{"tok": {Namespace: routegen.GatewayNamespace, ServiceAccount: routegen.GatewayName, Pod: "pod-a"}}, Authorize: sameNamespace, Heartbeat: time.Second}
	ts := startServer(t, srv, "127.0.0.1:0")
	res, opts := identified(200)
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	var enc Encoder
	first := enc.NewConfig(key, 1, translate.Translate(res, opts).IR)
	srv.Publish(map[string]Config{key: first})
	a := newApplied()
	c, _ := client(t, ts, "tok", key, a)
	run(t, c)
	known := map[string]ir.Route{}
	if got := a.next(t); got.Version != first.Version {
		t.Fatalf("applied %s, want %s", got.Version, first.Version)
	} else {
		remember(known, got.Snapshot)
	}
	res.HTTPRoutes[3].Spec.Rules[0].Matches[0].Path.Value = ptr("/changed")
	res.HTTPRoutes[3].Generation++
	second := enc.NewConfig(key, 2, translate.Translate(res, opts).IR)
	srv.Publish(map[string]Config{key: second})
	if tp, _ := srv.topic(key); tp.delta == nil || tp.base != first.Version {
		t.Fatal("the topic has no delta against the first config")
	}
	got := a.next(t)
	if got.Version != second.Version {
		t.Fatalf("applied %s, want %s", got.Version, second.Version)
	}
	if n := srv.deltasSent.Load(); n != 1 {
		t.Errorf("%d configs sent as deltas, want the second one", n)
	}
	plain, err := readFrame(bytes.NewReader(second.Frame()), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(unelide(t, known, got.Snapshot), plain.Config.Snapshot) {
		t.Error("the config applied from the delta, elided routes resolved, differs from the second config")
	}
}

// A Version names the content: the same Config gets the same Version from
// any Encoder, and any change gets another one, also a route moving to the
// next virtual host (the routes in the same order, split differently) or a
// key pair changing.
func TestVersionNamesTheContent(t *testing.T) {
	route := func(path string) ir.Route {
		return ir.Route{Name: "r" + path, Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: path}}}
	}
	split := func(n int, key string) *ir.Snapshot {
		routes := []ir.Route{route("/a"), route("/b"), route("/c")}
		l := ir.Listener{Name: "ns/gw/443", Gateway: "ns/gw", Port: 443, Protocol: ir.ProtocolHTTPS,
			Certificates: []ir.Certificate{{Name: "ns/tls", CertPEM: []byte("CERT"), KeyPEM: []byte(key)}},
			VirtualHosts: []ir.VirtualHost{
				{Name: "a", Hostname: "a.example", Routes: routes[:n]},
				{Name: "b", Hostname: "b.example", Routes: routes[n:]},
			}}
		return &ir.Snapshot{Listeners: []ir.Listener{l}}
	}
	var enc Encoder
	one := enc.NewConfig("ns/gw", 1, split(1, "KEY"))
	if again := NewConfig("ns/gw", 1, split(1, "KEY")); again.Version != one.Version {
		t.Errorf("the same content: versions %s and %s", one.Version, again.Version)
	}
	seen := map[string]string{one.Version: "1 route on a.example"}
	for name, c := range map[string]Config{
		"2 routes on a.example": enc.NewConfig("ns/gw", 1, split(2, "KEY")),
		"another key":           enc.NewConfig("ns/gw", 1, split(1, "KEY2")),
		"another generation":    enc.NewConfig("ns/gw", 2, split(1, "KEY")),
	} {
		if other, ok := seen[c.Version]; ok {
			t.Errorf("%s and %s have the same version %s", name, other, c.Version)
		}
		seen[c.Version] = name
		if m, err := readFrame(bytes.NewReader(c.Frame()), 1<<20); err != nil || m.Config.Version != c.Version {
			t.Errorf("%s: the frame carries %+v (%v), want version %s", name, m.Config, err, c.Version)
		}
	}
}
