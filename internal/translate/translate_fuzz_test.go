package translate

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/wellknown"
)

// FuzzTranslate decodes arbitrary bytes as YAML or JSON into a Resources
// snapshot (the API types, leniently: unknown fields dropped, no CRD
// validation, so objects the API server would refuse get through too) and
// translates it. Translate must not panic, must leave its input as it was,
// must give the same result twice, and every listener of the IR must
// compile in the data plane's router: a user's mistake becomes a status
// condition, never a snapshot the data plane refuses.
//
// Seeds: testdata/fuzz/FuzzTranslate, golden inputs (testdata/*.in.yaml)
// as Resources snapshots in YAML (field names as in the Go struct). Not
// every golden input: each seed costs about 10 ms of the bounded run's
// baseline, and TestTranslateIsPureAndDeterministic covers them all.
func FuzzTranslate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		a, ok := decodeFuzzResources(data)
		if !ok {
			return
		}
		// Two decodes share no pointers, so a translation that wrote into
		// its input shows up as a difference below.
		b, _ := decodeFuzzResources(data)
		before := deepCopy(a)
		for _, opts := range []Options{
			{DefaultAddress: "127.0.0.1"},
			{Provisioned: true, GatewayAddresses: map[string][]gwv1.GatewayStatusAddress{"default/gw": {{Value: "192.0.2.1"}}}},
		} {
			ra := Translate(a, opts)
			rb := Translate(b, opts)
			// reflect first: cmp is slow, and only needed to explain.
			if !reflect.DeepEqual(before, a) {
				t.Fatalf("Translate modified its input:\n%s", cmp.Diff(before, a))
			}
			if !reflect.DeepEqual(ra, rb) {
				t.Fatalf("two translations of the same input differ:\n%s", cmp.Diff(ra, rb))
			}
			if ra.IR == nil || ra.Status == nil {
				t.Fatalf("Translate returned IR %v, status %v", ra.IR, ra.Status)
			}
			for i := range ra.IR.Listeners {
				l := &ra.IR.Listeners[i]
				if _, err := router.Compile(l, lb.NewRegistry()); err != nil {
					t.Fatalf("the data plane refuses listener %q of the translation: %v", l.Name, err)
				}
			}
		}
	})
}

// fuzzClass is always part of a fuzzed snapshot, so inputs need not find
// the controller name to reach the Gateway and route code.
var fuzzClass = &gwv1.GatewayClass{}

func init() {
	fuzzClass.Name = "rauta"
	fuzzClass.Spec.ControllerName = wellknown.DefaultControllerName
}

// decodeFuzzResources decodes data into a snapshot as a provider would
// hands it over: no nil objects (providers never produce them). Nothing
// else is assumed: the translator checks regular expressions, names and
// references itself.
func decodeFuzzResources(data []byte) (*resources.Resources, bool) {
	var r resources.Resources
	if err := yaml.Unmarshal(data, &r); err != nil {
		return nil, false
	}
	r.GatewayClasses = append(dropNil(r.GatewayClasses), fuzzClass.DeepCopy())
	r.Gateways = dropNil(r.Gateways)
	r.HTTPRoutes = dropNil(r.HTTPRoutes)
	r.GRPCRoutes = dropNil(r.GRPCRoutes)
	r.TLSRoutes = dropNil(r.TLSRoutes)
	r.ReferenceGrants = dropNil(r.ReferenceGrants)
	r.BackendTLSPolicies = dropNil(r.BackendTLSPolicies)
	r.Services = dropNil(r.Services)
	r.EndpointSlices = dropNil(r.EndpointSlices)
	r.Secrets = dropNil(r.Secrets)
	r.Namespaces = dropNil(r.Namespaces)
	return &r, true
}

func dropNil[T any](in []*T) []*T {
	out := in[:0]
	for _, o := range in {
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}
