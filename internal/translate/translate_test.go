package translate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/resources"
)

// TestTranslateIsPureAndDeterministic checks the contract the controller
// relies on: the input snapshot is never modified (Envoy Gateway had races
// from exactly that) and the same input gives the same output.
func TestTranslateIsPureAndDeterministic(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.in.yaml")
	for _, in := range inputs {
		res, _, err := file.Load(in)
		if err != nil {
			t.Fatalf("load %s: %v", in, err)
		}
		before := deepCopy(res)
		a := Translate(res, Options{})
		b := Translate(res, Options{})
		if diff := cmp.Diff(before, res); diff != "" {
			t.Errorf("%s: Translate modified its input:\n%s", in, diff)
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s: two translations differ:\n%s", in, diff)
		}
	}
}

func deepCopy(r *resources.Resources) *resources.Resources {
	out := &resources.Resources{}
	out.GatewayClasses = copyAll(r.GatewayClasses)
	out.Gateways = copyAll(r.Gateways)
	out.ListenerSets = copyAll(r.ListenerSets)
	out.HTTPRoutes = copyAll(r.HTTPRoutes)
	out.GRPCRoutes = copyAll(r.GRPCRoutes)
	out.TLSRoutes = copyAll(r.TLSRoutes)
	out.TCPRoutes = copyAll(r.TCPRoutes)
	out.UDPRoutes = copyAll(r.UDPRoutes)
	out.ReferenceGrants = copyAll(r.ReferenceGrants)
	out.BackendTLSPolicies = copyAll(r.BackendTLSPolicies)
	out.Services = copyAll(r.Services)
	out.EndpointSlices = copyAll(r.EndpointSlices)
	out.Secrets = copyAll(r.Secrets)
	out.ConfigMaps = copyAll(r.ConfigMaps)
	out.Namespaces = copyAll(r.Namespaces)
	return out
}

func copyAll[T interface{ DeepCopyObject() runtime.Object }](in []T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, o := range in {
		out[i] = o.DeepCopyObject().(T)
	}
	return out
}

func TestIntersectHostnames(t *testing.T) {
	tests := []struct {
		listener, route, want string
		ok                    bool
	}{
		{"", "a.example.com", "a.example.com", true},
		{"", "*.example.com", "*.example.com", true},
		{"a.example.com", "a.example.com", "a.example.com", true},
		{"a.example.com", "b.example.com", "", false},
		{"*.example.com", "a.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", "", false},
		{"*.example.com", "a.example.org", "", false},
		{"a.example.com", "*.example.com", "a.example.com", true},
		{"example.com", "*.example.com", "", false},
		{"*.example.com", "*.a.example.com", "*.a.example.com", true},
		{"*.a.example.com", "*.example.com", "*.a.example.com", true},
		{"*.example.com", "*.example.org", "", false},
		{"*.example.com", "*.example.com", "*.example.com", true},
		// "*.xample.com" is not a subdomain wildcard of ".example.com".
		{"*.example.com", "*.xample.com", "", false},
	}
	for _, tt := range tests {
		got, ok := intersectHostnames(tt.listener, tt.route)
		if got != tt.want || ok != tt.ok {
			t.Errorf("intersectHostnames(%q, %q) = %q, %v; want %q, %v", tt.listener, tt.route, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHostnameSpecificityOrder(t *testing.T) {
	order := []string{"a.b.example.com", "*.b.example.com", "*.example.com", "*.com", ""}
	for i := 1; i < len(order); i++ {
		if hostnameSpecificity(order[i-1]) <= hostnameSpecificity(order[i]) {
			t.Errorf("%q should be more specific than %q", order[i-1], order[i])
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, ok := range []string{"1s", "500ms", "1h30m", "0s", "99999ms"} {
		if _, err := parseDuration(ok); err != nil {
			t.Errorf("parseDuration(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1.5s", "1us", "-1s", "100000s", "1s1s1s1s1s", "10"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) accepted an invalid duration", bad)
		}
	}
}

// Files reject invalid regexes at load time, so the golden cases cannot
// reach this path; a cluster can, because the CRD does not check them.
func TestInvalidRegexMakesTheRuleInvalid(t *testing.T) {
	bad := "/(unclosed"
	regex := gwv1.PathMatchRegularExpression
	_, err := httpMatch(&gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: &regex, Value: &bad}})
	if err == nil || !strings.Contains(err.Error(), "path.value: invalid regular expression") {
		t.Fatalf("want an invalid regular expression error naming path.value, got %v", err)
	}
	headerRegex := gwv1.HeaderMatchRegularExpression
	_, err = httpMatch(&gwv1.HTTPRouteMatch{Headers: []gwv1.HTTPHeaderMatch{{Name: "x", Type: &headerRegex, Value: "["}}})
	if err == nil || !strings.Contains(err.Error(), "headers[0].value: invalid regular expression") {
		t.Fatalf("want an invalid regular expression error naming headers[0].value, got %v", err)
	}
}
