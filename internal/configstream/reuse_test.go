package configstream

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

// withoutFingerprints returns a copy of s without route fingerprints.
func withoutFingerprints(s *ir.Snapshot) *ir.Snapshot {
	out := &ir.Snapshot{Listeners: append([]ir.Listener(nil), s.Listeners...)}
	for i := range out.Listeners {
		l := &out.Listeners[i]
		l.VirtualHosts = append([]ir.VirtualHost(nil), l.VirtualHosts...)
		for j := range l.VirtualHosts {
			vh := &l.VirtualHosts[j]
			vh.Routes = append([]ir.Route(nil), vh.Routes...)
			for k := range vh.Routes {
				vh.Routes[k].Fingerprint = ""
			}
		}
	}
	return out
}

// A stream's decoder gives what a plain decode gives, every route with its
// encoding as fingerprint; a route unchanged from the previous Config is
// the previous one (not decoded again), a changed one is new.
func TestFrameDecoderReusesUnchangedRoutes(t *testing.T) {
	res := routegen.Resources(200)
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	opts := translate.Options{Provisioned: true}
	first := NewConfig(key, 1, translate.Translate(res, opts).IR)
	res.HTTPRoutes[100].Spec.Rules[0].Matches[0].Path.Value = ptr("/changed")
	res.HTTPRoutes[100].Generation++
	second := NewConfig(key, 2, translate.Translate(res, opts).IR)

	var dec frameDecoder
	var got [2]*ir.Snapshot
	for i, c := range []Config{first, second} {
		m, err := dec.read(bytes.NewReader(c.Frame()), 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := readFrame(bytes.NewReader(c.Frame()), 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.Version != c.Version || m.Config.Generation != c.Generation || m.Config.Gateway != key {
			t.Errorf("config %d: version %q generation %d gateway %q", i, m.Config.Version, m.Config.Generation, m.Config.Gateway)
		}
		if !reflect.DeepEqual(withoutFingerprints(m.Config.Snapshot), plain.Config.Snapshot) {
			t.Fatalf("config %d: the reusing decoder's snapshot differs from a plain decode", i)
		}
		got[i] = m.Config.Snapshot
	}
	reused, fresh := 0, 0
	prev := map[string]*ir.Route{}
	for _, l := range got[0].Listeners {
		for _, vh := range l.VirtualHosts {
			for k := range vh.Routes {
				rt := &vh.Routes[k]
				if rt.Fingerprint == "" {
					t.Fatalf("route %s has no fingerprint", rt.Name)
				}
				prev[rt.Name] = rt
			}
		}
	}
	for _, l := range got[1].Listeners {
		for _, vh := range l.VirtualHosts {
			for k := range vh.Routes {
				rt := &vh.Routes[k]
				p := prev[rt.Name]
				switch {
				case p != nil && p.Fingerprint == rt.Fingerprint && len(rt.Backends) > 0 && &p.Backends[0] == &rt.Backends[0]:
					reused++
				case p == nil || p.Fingerprint != rt.Fingerprint:
					fresh++
				default:
					t.Errorf("route %s: same encoding, decoded again", rt.Name)
				}
			}
		}
	}
	if fresh == 0 || reused < 190 {
		t.Errorf("%d routes reused, %d decoded again; want the changed route's only decoded", reused, fresh)
	}
}

func ptr[T any](v T) *T { return &v }

// The decoder gives the rules of a route one copy of their backend list,
// endpoint list, hostname and hostname list, and a route change in the next Config (new endpoints for
// one Service) leaves the earlier Config's routes as they were, shared or
// not.
func TestFrameDecoderSharesRepeats(t *testing.T) {
	res := routegen.Resources(40)
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	opts := translate.Options{Provisioned: true}
	first := NewConfig(key, 1, translate.Translate(res, opts).IR)
	var dec frameDecoder
	m, err := dec.read(bytes.NewReader(first.Frame()), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	snap := m.Config.Snapshot
	want := withoutFingerprints(snap) // a deep copy of the lists that matter
	for i := range want.Listeners {
		for j := range want.Listeners[i].VirtualHosts {
			for k := range want.Listeners[i].VirtualHosts[j].Routes {
				r := &want.Listeners[i].VirtualHosts[j].Routes[k]
				r.Backends = append([]ir.Backend(nil), r.Backends...)
				for b := range r.Backends {
					r.Backends[b].Endpoints = append([]ir.Endpoint(nil), r.Backends[b].Endpoints...)
				}
			}
		}
	}
	// Rules of one HTTPRoute: same Service, one endpoint list.
	byBackend := map[string]*ir.Route{}
	shared := 0
	for _, l := range snap.Listeners {
		for _, vh := range l.VirtualHosts {
			for k := range vh.Routes {
				r := &vh.Routes[k]
				if len(r.Backends) != 1 || len(r.Backends[0].Endpoints) == 0 {
					t.Fatalf("route %s: want one backend with endpoints", r.Name)
				}
				p := byBackend[r.Backends[0].Name]
				if p == nil {
					byBackend[r.Backends[0].Name] = r
					continue
				}
				if &p.Backends[0] != &r.Backends[0] {
					t.Errorf("routes %s and %s: the same backends, two copies", p.Name, r.Name)
				}
				if &p.Backends[0].Endpoints[0] != &r.Backends[0].Endpoints[0] {
					t.Errorf("routes %s and %s: the same endpoints, two copies", p.Name, r.Name)
				}
				if len(p.Hostnames) == 1 && len(r.Hostnames) == 1 && unsafe.StringData(p.Hostnames[0]) != unsafe.StringData(r.Hostnames[0]) {
					t.Errorf("routes %s and %s: the same hostname, two copies", p.Name, r.Name)
				}
				if len(p.Hostnames) == 1 && slices.Equal(p.Hostnames, r.Hostnames) && &p.Hostnames[0] != &r.Hostnames[0] {
					t.Errorf("routes %s and %s: the same hostname list, two copies", p.Name, r.Name)
				}
				shared++
			}
		}
	}
	if shared == 0 {
		t.Fatal("no two routes share a backend; the test input changed")
	}

	// The next Config moves one Service's endpoints.
	es := res.EndpointSlices[1]
	es.Endpoints[0].Addresses = []string{"10.244.220.9"}
	es.Generation++
	second := NewConfig(key, 2, translate.Translate(res, opts).IR)
	m2, err := dec.read(bytes.NewReader(second.Frame()), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, l := range m2.Config.Snapshot.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				for _, ep := range r.Backends[0].Endpoints {
					if ep.Address == "10.244.220.9" {
						moved++
					}
				}
			}
		}
	}
	if moved == 0 {
		t.Fatal("the second config does not carry the moved endpoint")
	}
	if !reflect.DeepEqual(withoutFingerprints(snap), want) {
		t.Error("decoding the next config changed the routes of the first")
	}
}
