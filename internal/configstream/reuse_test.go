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

// unelide returns a copy of s with each elided route replaced by the route
// of its Fingerprint in known (the Configs decoded before), as the router
// resolves it from what it compiled; it fails t for one known does not have.
func unelide(t *testing.T, known map[string]ir.Route, s *ir.Snapshot) *ir.Snapshot {
	t.Helper()
	out := withoutFingerprints(s)
	for i := range s.Listeners {
		for j := range s.Listeners[i].VirtualHosts {
			for k, rt := range s.Listeners[i].VirtualHosts[j].Routes {
				if !rt.Elided {
					continue
				}
				full, ok := known[rt.Fingerprint]
				if !ok {
					t.Fatalf("listener %d virtual host %d route %d: elided, fingerprint %x not decoded before", i, j, k, rt.Fingerprint)
				}
				full.Fingerprint = ""
				out.Listeners[i].VirtualHosts[j].Routes[k] = full
			}
		}
	}
	return out
}

// remember adds the decoded (not elided) routes of s to known.
func remember(known map[string]ir.Route, s *ir.Snapshot) {
	for _, l := range s.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, rt := range vh.Routes {
				if !rt.Elided {
					known[rt.Fingerprint] = rt
				}
			}
		}
	}
}

// A stream's decoder gives what a plain decode gives, every route with its
// encoding as fingerprint; a route unchanged from the previous Config is
// elided (not decoded again: only its Fingerprint, the previous one's), a
// changed one is decoded. The decoder keeps fingerprints, not routes.
func TestFrameDecoderElidesUnchangedRoutes(t *testing.T) {
	res := routegen.Resources(200)
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	opts := translate.Options{Provisioned: true}
	first := NewConfig(key, 1, translate.Translate(res, opts).IR)
	res.HTTPRoutes[100].Spec.Rules[0].Matches[0].Path.Value = ptr("/changed")
	res.HTTPRoutes[100].Generation++
	second := NewConfig(key, 2, translate.Translate(res, opts).IR)

	var dec frameDecoder
	known := map[string]ir.Route{}
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
		if !reflect.DeepEqual(unelide(t, known, m.Config.Snapshot), plain.Config.Snapshot) {
			t.Fatalf("config %d: the decoder's snapshot, elided routes resolved, differs from a plain decode", i)
		}
		remember(known, m.Config.Snapshot)
		got[i] = m.Config.Snapshot
		if len(dec.fps) != routeCount(c.Snapshot) {
			t.Errorf("config %d: the decoder keeps %d fingerprints, want one per route (%d)", i, len(dec.fps), routeCount(c.Snapshot))
		}
	}
	before := map[string]bool{}
	for _, l := range got[0].Listeners {
		for _, vh := range l.VirtualHosts {
			for _, rt := range vh.Routes {
				if rt.Fingerprint == "" || rt.Elided {
					t.Fatalf("first config: route %s elided or without a fingerprint", rt.Name)
				}
				before[rt.Fingerprint] = true
			}
		}
	}
	elided, fresh := 0, 0
	for _, l := range got[1].Listeners {
		for _, vh := range l.VirtualHosts {
			for _, rt := range vh.Routes {
				switch {
				case rt.Elided && before[rt.Fingerprint] && rt.Name == "" && rt.Backends == nil:
					elided++
				case !rt.Elided && !before[rt.Fingerprint] && rt.Name != "":
					fresh++
				default:
					t.Errorf("route %q (elided %v): decoded though unchanged, or elided though new", rt.Name, rt.Elided)
				}
			}
		}
	}
	if fresh == 0 || elided < 190 {
		t.Errorf("%d routes elided, %d decoded; want the changed route's only decoded", elided, fresh)
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
				if r.Elided {
					continue
				}
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
