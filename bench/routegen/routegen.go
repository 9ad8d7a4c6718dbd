// Package routegen builds realistic Gateway API inputs of any size for the
// scale benchmarks: one Gateway, n HTTPRoutes spread over team namespaces,
// one Service with a three-endpoint EndpointSlice per route, and requests
// that reach known routes.
//
// The shape follows what large clusters carry: most routes own a hostname
// (svc.team.example.com) with a health check, a canary header match and a
// catch-all; every fourth route shares api.example.com and is told apart by
// its path prefix, one in a hundred also by a regular expression. Everything is
// deterministic in n.
package routegen

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
)

// Gateway is the namespace/name of the generated Gateway; its one HTTP
// listener is on Port.
const (
	GatewayNamespace = "infra"
	GatewayName      = "public"
	Port             = 80
	// SharedHost is the hostname every fourth route shares, matched by path.
	SharedHost = "api.example.com"
)

var apps = []string{"checkout", "cart", "catalog", "search", "payments", "accounts", "inventory", "shipping",
	"reviews", "recommendations", "notifications", "auth", "profile", "orders", "pricing", "media"}

// teams is how many namespaces the routes are spread over.
func teams(n int) int { return max(1, min(50, n/20)) }

// name gives route i its name and namespace.
func name(i, n int) (ns, svc string) {
	return fmt.Sprintf("team-%02d", i%teams(n)), fmt.Sprintf("%s-%d", apps[i%len(apps)], i)
}

func shared(i int) bool { return i%4 == 0 }

// legacy routes (one in a hundred, all on the shared host) also match a
// regular expression, which the router cannot bucket by path segment.
func legacy(i int) bool { return i%100 == 0 }

// Resources returns the translator input for n HTTPRoutes.
func Resources(n int) *resources.Resources {
	res := &resources.Resources{
		GatewayClasses: []*gwv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "rauta"},
			Spec:       gwv1.GatewayClassSpec{ControllerName: "rauta.io/gateway-controller"},
		}},
		Gateways: []*gwv1.Gateway{gateway()},
	}
	for t := 0; t < teams(n); t++ {
		res.Namespaces = append(res.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%02d", t)}})
	}
	for i := 0; i < n; i++ {
		ns, svc := name(i, n)
		res.HTTPRoutes = append(res.HTTPRoutes, httpRoute(i, ns, svc))
		res.Services = append(res.Services, service(ns, svc))
		res.EndpointSlices = append(res.EndpointSlices, endpointSlice(i, ns, svc))
	}
	return res
}

func gateway() *gwv1.Gateway {
	all := gwv1.NamespacesFromAll
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: GatewayNamespace, Name: GatewayName},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: "rauta",
			Listeners: []gwv1.Listener{{
				Name: "http", Port: Port, Protocol: gwv1.HTTPProtocolType,
				AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}},
			}},
		},
	}
}

// Hostname is the hostname of route i when it has its own.
func Hostname(i, n int) string {
	ns, svc := name(i, n)
	return fmt.Sprintf("%s.%s.example.com", svc, ns)
}

func httpRoute(i int, ns, svc string) *gwv1.HTTPRoute {
	gns := gwv1.Namespace(GatewayNamespace)
	port := gwv1.PortNumber(80)
	backend := []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Name: gwv1.ObjectName(svc), Port: &port}}}}
	pathMatch := func(t gwv1.PathMatchType, v string) *gwv1.HTTPPathMatch {
		return &gwv1.HTTPPathMatch{Type: &t, Value: &v}
	}
	rt := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc},
		Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
			Namespace: &gns, Name: GatewayName}}}},
	}
	if shared(i) {
		rt.Spec.Hostnames = []gwv1.Hostname{SharedHost}
		rules := []gwv1.HTTPRouteRule{{
			Matches:     []gwv1.HTTPRouteMatch{{Path: pathMatch(gwv1.PathMatchPathPrefix, "/"+svc)}},
			BackendRefs: backend,
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{
				Path: &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr("/")}}}},
		}}
		if legacy(i) {
			rules = append(rules, gwv1.HTTPRouteRule{
				Matches:     []gwv1.HTTPRouteMatch{{Path: pathMatch(gwv1.PathMatchRegularExpression, "/legacy/"+svc+"/items/[0-9]+")}},
				BackendRefs: backend,
			})
		}
		rt.Spec.Rules = rules
		return rt
	}
	get := gwv1.HTTPMethodGet
	rt.Spec.Hostnames = []gwv1.Hostname{gwv1.Hostname(fmt.Sprintf("%s.%s.example.com", svc, ns))}
	rt.Spec.Rules = []gwv1.HTTPRouteRule{
		{Matches: []gwv1.HTTPRouteMatch{{Path: pathMatch(gwv1.PathMatchExact, "/healthz")}}, BackendRefs: backend},
		{
			Matches: []gwv1.HTTPRouteMatch{{
				Path:    pathMatch(gwv1.PathMatchPathPrefix, "/api/v2"),
				Method:  &get,
				Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Canary", Value: "true"}},
			}},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
				Set:    []gwv1.HTTPHeader{{Name: "X-Team", Value: ns}},
				Add:    []gwv1.HTTPHeader{{Name: "X-Route", Value: svc}},
				Remove: []string{"X-Internal-Debug"},
			}}},
			BackendRefs: backend,
		},
		{Matches: []gwv1.HTTPRouteMatch{{Path: pathMatch(gwv1.PathMatchPathPrefix, "/")}}, BackendRefs: backend},
	}
	return rt
}

func service(ns, svc string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
}

func endpointSlice(i int, ns, svc string) *discoveryv1.EndpointSlice {
	port := int32(8080)
	pname := "http"
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &pname, Port: &port}},
	}
	for k := 0; k < 3; k++ {
		ip := 3*i + k
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 64+ip>>16&63, ip>>8&255, ip&255)},
		})
	}
	return es
}

func ptr[T any](v T) *T { return &v }

// Request is one request of the lookup mix and the HTTPRoute it must reach.
type Request struct {
	Host   string
	Path   string
	Method string
	Header http.Header
	// Route is "namespace/name" of the HTTPRoute that must answer.
	Route string
}

// Requests returns count requests spread evenly over the n routes: for own
// hostnames the canary rule (host, method, prefix and header all compared)
// and the catch-all, for the shared host a path prefix or a regex.
func Requests(n, count int) []Request {
	out := make([]Request, 0, count)
	for k := 0; k < count; k++ {
		i := (k*7919 + k/2) % n // spread over the table, not only its head
		ns, svc := name(i, n)
		r := Request{Method: http.MethodGet, Route: ns + "/" + svc, Header: http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}}}
		switch {
		case legacy(i) && k%2 == 0:
			r.Host, r.Path = SharedHost, "/legacy/"+svc+"/items/12345"
		case shared(i):
			r.Host, r.Path = SharedHost, "/"+svc+"/v1/orders/42"
		case k%2 == 0:
			r.Host, r.Path = Hostname(i, n), "/api/v2/orders/42"
			r.Header.Set("X-Canary", "true")
		default:
			r.Host, r.Path = Hostname(i, n), "/static/app.js"
		}
		out = append(out, r)
	}
	return out
}
