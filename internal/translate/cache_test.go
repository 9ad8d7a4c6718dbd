package translate

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/resources"
)

// identify gives every object the identity the API server would: a UID,
// generation 1 and a resource version.
func identify(res *resources.Resources) {
	n := 0
	id := func(uid *types.UID, rv *string) {
		n++
		*uid, *rv = types.UID(fmt.Sprintf("uid-%d", n)), fmt.Sprint(n)
	}
	for _, o := range res.HTTPRoutes {
		id(&o.UID, &o.ResourceVersion)
		o.Generation = 1
	}
	for _, o := range res.Services {
		id(&o.UID, &o.ResourceVersion)
	}
	for _, o := range res.EndpointSlices {
		id(&o.UID, &o.ResourceVersion)
	}
	for _, o := range res.ReferenceGrants {
		id(&o.UID, &o.ResourceVersion)
	}
	for _, o := range res.BackendTLSPolicies {
		id(&o.UID, &o.ResourceVersion)
	}
}

// TestCacheTranslatesLikeNoCache: over every golden input, a cached
// translation (cold, warm, and after a route, a Service and an EndpointSlice
// changed, and a route was deleted and made again under the same name) is
// the uncached translation of the same resources, and warm translations do
// reuse routes.
func TestCacheTranslatesLikeNoCache(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("golden inputs: %v", err)
	}
	hits := 0
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			res, _, err := file.Load(in)
			if err != nil {
				t.Fatal(err)
			}
			identify(res)
			opts := Options{DefaultAddress: "127.0.0.1"}
			cache := &Cache{}
			// Every fingerprint a cached translation gave, and its route:
			// one fingerprint must never name two different routes.
			named := map[string]ir.Route{}
			same := func(step string) {
				t.Helper()
				want := Translate(res, opts)
				cached := opts
				cached.Cache = cache
				got := Translate(res, cached)
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(ir.Route{}, "Fingerprint")); diff != "" {
					t.Fatalf("%s: cached translation differs (-uncached +cached):\n%s", step, diff)
				}
				for _, l := range got.IR.Listeners {
					for _, vh := range l.VirtualHosts {
						for _, rt := range vh.Routes {
							if rt.Fingerprint == "" {
								continue
							}
							if before, ok := named[rt.Fingerprint]; ok {
								if diff := cmp.Diff(before, rt, cmpopts.EquateEmpty()); diff != "" {
									t.Fatalf("%s: fingerprint %q names two routes (-before +now):\n%s", step, rt.Fingerprint, diff)
								}
							}
							named[rt.Fingerprint] = rt
						}
					}
				}
			}
			same("cold")
			same("warm")
			hits += cache.hits
			if len(res.HTTPRoutes) > 0 {
				r := res.HTTPRoutes[0]
				r.Generation++
				r.Spec.Hostnames = append(r.Spec.Hostnames, "changed.example")
				same("a route changed")
				r.UID += "-new" // deleted and made again, generation 1
				r.Generation = 1
				r.Spec.Rules = append(r.Spec.Rules, gwv1.HTTPRouteRule{})
				same("a route made again")
			}
			if len(res.Services) > 0 {
				s := res.Services[0]
				s.ResourceVersion += "0"
				s.Annotations = map[string]string{AnnotationLBPolicy: "NoSuchPolicy"}
				same("a Service changed")
			}
			if len(res.EndpointSlices) > 0 {
				es := res.EndpointSlices[0]
				es.ResourceVersion += "0"
				es.Endpoints = nil
				same("an EndpointSlice changed")
			}
		})
	}
	if hits == 0 {
		t.Error("no warm translation reused a route")
	}
}

// BenchmarkTranslateOneChange translates 1,000 realistic routes
// (bench/routegen) after one route changed, without and with a Cache.
func BenchmarkTranslateOneChange(b *testing.B) {
	res := routegen.Resources(1000)
	identify(res)
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", cached), func(b *testing.B) {
			opts := Options{}
			if cached {
				opts.Cache = &Cache{}
			}
			Translate(res, opts)
			b.ReportAllocs()
			for b.Loop() {
				res.HTTPRoutes[500].Generation++
				Translate(res, opts)
			}
		})
	}
}

// TestCompareKeys: compareKeys orders like comparing "ns/name" strings,
// including the cases where "/" sorts against other bytes.
func TestCompareKeys(t *testing.T) {
	parts := []string{"", "a", "a-x", "a/b", "a.b", "ab", "b", "a0", "z"}
	for _, an := range parts {
		for _, a := range parts {
			for _, bn := range parts {
				for _, b := range parts {
					want := strings.Compare(an+"/"+a, bn+"/"+b)
					got := compareKeys(an, a, bn, b)
					if (got < 0) != (want < 0) || (got == 0) != (want == 0) {
						t.Fatalf("compareKeys(%q, %q, %q, %q) = %d, want the sign of %d", an, a, bn, b, got, want)
					}
				}
			}
		}
	}
}
