package configstream

import (
	"bytes"
	"reflect"
	"testing"

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
