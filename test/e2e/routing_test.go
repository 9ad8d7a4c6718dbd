package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// backendsNamed starts one echo backend per name.
func backendsNamed(t *testing.T, names ...string) []*backend {
	t.Helper()
	out := make([]*backend, len(names))
	for i, n := range names {
		out[i] = startBackend(t, n)
	}
	return out
}

// catchAll is a rule without matches (every path) sending to one Service.
func catchAll(service string) string {
	return "  - " + strings.TrimPrefix(to(service), "    ")
}

// to is a rule's backendRefs pointing at one Service.
func to(service string) string {
	return "    backendRefs:\n    - name: " + service + "\n      port: 80\n"
}

func TestRouting(t *testing.T) {
	bes := backendsNamed(t, "host-a", "host-b", "wild", "wild-exact",
		"exact", "prefix", "regex", "fallback",
		"hdr-exact", "hdr-regex", "query", "method", "match-default",
		"short", "long")
	port := freePort(t)
	manifests := httpGateway(port) + servicesYAML(bes...) +
		routeYAML("host-a", []string{"a.test"}, catchAll("host-a")) +
		routeYAML("host-b", []string{"b.test"}, catchAll("host-b")) +
		routeYAML("wild", []string{"*.wild.test"}, catchAll("wild")) +
		routeYAML("wild-exact", []string{"exact.wild.test"}, catchAll("wild-exact")) +
		routeYAML("paths", []string{"paths.test"}, `  - matches:
    - path:
        type: Exact
        value: /exact
`+to("exact")+`  - matches:
    - path:
        type: PathPrefix
        value: /foo
`+to("prefix")+`  - matches:
    - path:
        type: RegularExpression
        value: /items/[0-9]+
`+to("regex")+`  - matches:
    - path:
        type: PathPrefix
        value: /
`+to("fallback")) +
		routeYAML("match", []string{"match.test"}, `  - matches:
    - headers:
      - name: X-Env
        value: staging
`+to("hdr-exact")+`  - matches:
    - headers:
      - name: X-Version
        type: RegularExpression
        value: v[0-9]+
`+to("hdr-regex")+`  - matches:
    - queryParams:
      - name: debug
        value: "1"
`+to("query")+`  - matches:
    - method: POST
`+to("method")+catchAll("match-default")) +
		routeYAML("prec-short", []string{"prec.test"}, `  - matches:
    - path:
        type: PathPrefix
        value: /api
`+to("short")) +
		routeYAML("prec-long", []string{"prec.test"}, `  - matches:
    - path:
        type: PathPrefix
        value: /api/v1
`+to("long"))
	startGateway(t, map[string]string{"all.yaml": manifests})
	c := newClient()

	cases := []struct {
		name    string
		method  string
		host    string
		target  string
		headers []string
		want    string // backend name; "" means the gateway answers 404
	}{
		{name: "host a", host: "a.test", target: "/", want: "host-a"},
		{name: "host b", host: "b.test", target: "/x", want: "host-b"},
		{name: "host with port", host: "a.test:1234", target: "/", want: "host-a"},
		{name: "host case-insensitive", host: "A.TEST", target: "/", want: "host-a"},
		{name: "wildcard host", host: "one.wild.test", target: "/", want: "wild"},
		{name: "wildcard needs a label", host: "wild.test", target: "/", want: ""},
		{name: "exact host beats wildcard", host: "exact.wild.test", target: "/", want: "wild-exact"},
		{name: "unknown host", host: "nothing.test", target: "/", want: ""},

		{name: "exact path", host: "paths.test", target: "/exact", want: "exact"},
		{name: "exact path is exact", host: "paths.test", target: "/exact/", want: "fallback"},
		{name: "exact path ignores query", host: "paths.test", target: "/exact?x=1", want: "exact"},
		{name: "prefix itself", host: "paths.test", target: "/foo", want: "prefix"},
		{name: "prefix trailing slash", host: "paths.test", target: "/foo/", want: "prefix"},
		{name: "prefix segment", host: "paths.test", target: "/foo/bar", want: "prefix"},
		{name: "prefix is not a string prefix", host: "paths.test", target: "/foobar", want: "fallback"},
		{name: "regex", host: "paths.test", target: "/items/42", want: "regex"},
		{name: "regex is anchored at the end", host: "paths.test", target: "/items/42/x", want: "fallback"},
		{name: "regex mismatch", host: "paths.test", target: "/items/abc", want: "fallback"},

		{name: "header exact", host: "match.test", target: "/", headers: []string{"X-Env", "staging"}, want: "hdr-exact"},
		{name: "header name case-insensitive", host: "match.test", target: "/", headers: []string{"x-env", "staging"}, want: "hdr-exact"},
		{name: "header value mismatch", host: "match.test", target: "/", headers: []string{"X-Env", "prod"}, want: "match-default"},
		{name: "header regex", host: "match.test", target: "/", headers: []string{"X-Version", "v12"}, want: "hdr-regex"},
		{name: "header regex anchored", host: "match.test", target: "/", headers: []string{"X-Version", "v12-beta"}, want: "match-default"},
		{name: "query param", host: "match.test", target: "/?debug=1", want: "query"},
		{name: "query param value mismatch", host: "match.test", target: "/?debug=2", want: "match-default"},
		{name: "method", method: http.MethodPost, host: "match.test", target: "/", want: "method"},
		{name: "method beats header", method: http.MethodPost, host: "match.test", target: "/", headers: []string{"X-Env", "staging"}, want: "method"},
		{name: "header beats query", host: "match.test", target: "/?debug=1", headers: []string{"X-Env", "staging"}, want: "hdr-exact"},
		{name: "no match falls to default rule", host: "match.test", target: "/anything", want: "match-default"},

		{name: "longer prefix across routes", host: "prec.test", target: "/api/v1/users", want: "long"},
		{name: "shorter prefix across routes", host: "prec.test", target: "/api/users", want: "short"},
		{name: "prefix segment across routes", host: "prec.test", target: "/api/v10", want: "short"},
		{name: "no route on host", host: "prec.test", target: "/other", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := request(t, method, port, tc.host, tc.target)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			res := do(t, c, req)
			if tc.want == "" {
				if res.status != http.StatusNotFound {
					t.Fatalf("status = %d, want 404; body %s", res.status, res.body)
				}
				return
			}
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
			}
			rep := res.reply(t)
			if rep.Backend != tc.want {
				t.Errorf("served by %q, want %q", rep.Backend, tc.want)
			}
			if rep.Method != method {
				t.Errorf("backend saw method %q, want %q", rep.Method, method)
			}
		})
	}
}

// TestListenerIsolation: a route attached to one listener by sectionName is
// served on that listener's port only, and two Gateway listeners on two
// ports keep their routes apart.
func TestListenerIsolation(t *testing.T) {
	bes := backendsNamed(t, "one", "everywhere")
	portOne, portTwo := freePort(t), freePort(t)
	startGateway(t, map[string]string{
		"gateway.yaml": gatewayYAML("gw",
			listenerSpec{name: "one", port: portOne, protocol: "HTTP"},
			listenerSpec{name: "two", port: portTwo, protocol: "HTTP"}),
		"backends.yaml": servicesYAML(bes...),
		"routes.yaml": strings.Replace(routeYAML("one", []string{"iso.test"}, catchAll("one")),
			"  - name: gw\n", "  - name: gw\n    sectionName: one\n", 1) +
			routeYAML("everywhere", []string{"all.test"}, catchAll("everywhere")),
	})
	c := newClient()
	cases := []struct {
		port int
		host string
		want string // "" is 404
	}{
		{portOne, "iso.test", "one"},
		{portTwo, "iso.test", ""},
		{portOne, "all.test", "everywhere"},
		{portTwo, "all.test", "everywhere"},
	}
	for _, tc := range cases {
		res := get(t, c, tc.port, tc.host, "/")
		switch {
		case tc.want == "" && res.status != http.StatusNotFound:
			t.Errorf("%s on port %d: status %d, want 404", tc.host, tc.port, res.status)
		case tc.want != "" && (res.status != http.StatusOK || res.reply(t).Backend != tc.want):
			t.Errorf("%s on port %d: status %d body %s, want 200 from %s", tc.host, tc.port, res.status, res.body, tc.want)
		}
	}
}
