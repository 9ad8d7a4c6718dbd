package router

import (
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func TestHostSelection(t *testing.T) {
	l := &ir.Listener{Name: "ns/gw/80", Port: 80, VirtualHosts: []ir.VirtualHost{
		{Name: "exact", Hostname: "foo.example.com", Routes: []ir.Route{route("exact", prefix("/"))}},
		{Name: "deep", Hostname: "*.a.example.com", Routes: []ir.Route{route("deep", prefix("/"))}},
		{Name: "wild", Hostname: "*.example.com", Routes: []ir.Route{
			// Only /only matches here: a request for another path on a
			// *.example.com host must 404, not fall through to the catch-all.
			route("wild", prefix("/only")),
		}},
		{Name: "any", Routes: []ir.Route{route("any", prefix("/"))}},
	}}
	tbl := mustCompile(t, l)
	tests := []struct {
		host, path, want string
	}{
		{"foo.example.com", "/", "exact"},
		{"FOO.Example.COM:8080", "/x", "exact"},
		{"foo.example.com.", "/", "exact"},
		{"b.a.example.com", "/", "deep"},
		{"c.b.a.example.com", "/", "deep"},
		{"a.example.com", "/only", "wild"},
		{"bar.example.com", "/only/x", "wild"},
		{"x.y.example.com", "/only", "wild"},
		{"bar.example.com", "/other", ""}, // no fall-through to the catch-all
		{"example.com", "/", "any"},       // a wildcard never matches its bare suffix
		{".example.com", "/", "any"},
		{"other.org", "/", "any"},
		{"127.0.0.1:80", "/", "any"},
		{"[::1]:80", "/", "any"},
		{"", "/", "any"},
		{strings.Repeat("a", 300) + ".example.com", "/only", "wild"},
		{strings.Repeat("A", 300) + ".EXAMPLE.com", "/only", "wild"},
	}
	for _, tc := range tests {
		got := matchName(tbl, &Request{Host: tc.host, Path: tc.path, Method: "GET"})
		if got != tc.want {
			t.Errorf("host %q path %q: got route %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestRouteHostnames(t *testing.T) {
	l := &ir.Listener{Port: 80, VirtualHosts: []ir.VirtualHost{{Name: "vh", Routes: []ir.Route{
		route("none-first", exact("/none")),
		route("wild", prefix("/"), "*.example.com"),
		route("exact", prefix("/e"), "foo.example.com", "FOO.example.com"),
		route("both", prefix("/b"), "foo.example.com", "*.example.com"),
		route("none", prefix("/")),
	}}}}
	tbl := mustCompile(t, l)
	tests := []struct{ host, path, want string }{
		{"foo.example.com", "/e/1", "exact"},
		{"foo.example.com", "/b", "both"},
		{"foo.example.com", "/x", ""}, // exact group chosen, no fall-through to wildcard
		{"bar.example.com", "/b", "wild"},
		{"bar.example.com", "/x", "wild"},
		{"example.com", "/none", "none-first"},
		{"example.com", "/x", "none"},
		{"foo.example.org", "/x", "none"},
	}
	for _, tc := range tests {
		if got := matchName(tbl, &Request{Host: tc.host, Path: tc.path}); got != tc.want {
			t.Errorf("host %q path %q: got %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestPathMatch(t *testing.T) {
	tests := []struct {
		m     ir.Match
		path  string
		match bool
	}{
		{exact("/foo"), "/foo", true},
		{exact("/foo"), "/foo/", false},
		{exact("/foo"), "/FOO", false},
		{exact("/a%2Fb"), "/a%2Fb", true}, // matched as received, escaped
		{exact("/a%2Fb"), "/a/b", false},
		{prefix("/foo"), "/foo", true},
		{prefix("/foo"), "/foo/", true},
		{prefix("/foo"), "/foo/bar", true},
		{prefix("/foo"), "/foobar", false},
		{prefix("/foo"), "/fo", false},
		{prefix("/foo/"), "/foo", true},
		{prefix("/foo/"), "/foo/bar", true},
		{prefix("/foo/"), "/foobar", false},
		{prefix("/foo/bar"), "/foo/bar/baz", true},
		{prefix("/foo/bar"), "/foo/barbaz", false},
		{prefix("/"), "/anything/at/all", true},
		{prefix("/"), "/", true},
		{ir.Match{}, "/default-is-prefix-slash", true},
		{regex("/v[0-9]+/.*"), "/v12/users", true},
		{regex("/v[0-9]+/.*"), "/x/v12/users", false}, // anchored at start
		{regex("/v[0-9]+"), "/v12/users", false},      // anchored at end
		{regex("/a|/b"), "/b", true},                  // alternation is grouped
		{regex("/a|/b"), "/ab", false},
	}
	for _, tc := range tests {
		l := &ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{route("r", tc.m)}}}}
		got := mustCompile(t, l).Match(&Request{Path: tc.path}) != nil
		if got != tc.match {
			t.Errorf("%s %q vs path %q: got %v, want %v", tc.m.Path.Type, tc.m.Path.Value, tc.path, got, tc.match)
		}
	}
}

func TestMethodHeaderQueryMatch(t *testing.T) {
	m := ir.Match{
		Path:    ir.PathMatch{Type: ir.PathPrefix, Value: "/"},
		Method:  "POST",
		Headers: []ir.ValueMatch{{Type: ir.StringExact, Name: "x-env", Value: "canary"}, {Type: ir.StringRegex, Name: "X-Version", Value: "v[12]"}},
		QueryParams: []ir.ValueMatch{
			{Type: ir.StringExact, Name: "q", Value: "a b"},
			{Type: ir.StringRegex, Name: "n", Value: "[0-9]+"},
		},
	}
	tbl := mustCompile(t, &ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{route("r", m)}}}})
	good := func() Request {
		return Request{Path: "/", Method: "POST", RawQuery: "q=a+b&n=42", Header: hdr("X-Env", "canary", "x-version", "v2")}
	}
	tests := []struct {
		name  string
		edit  func(*Request)
		match bool
	}{
		{"all hold", func(*Request) {}, true},
		{"wrong method", func(r *Request) { r.Method = "GET" }, false},
		{"method is case-sensitive", func(r *Request) { r.Method = "post" }, false},
		{"header value differs", func(r *Request) { r.Header = hdr("X-Env", "Canary", "X-Version", "v2") }, false},
		{"header missing", func(r *Request) { r.Header = hdr("X-Version", "v2") }, false},
		{"nil header", func(r *Request) { r.Header = nil }, false},
		{"header regex is anchored", func(r *Request) { r.Header = hdr("X-Env", "canary", "X-Version", "v23") }, false},
		{"first header value counts", func(r *Request) { r.Header = hdr("X-Env", "canary", "X-Version", "v3", "X-Version", "v1") }, false},
		{"query %20 escape", func(r *Request) { r.RawQuery = "q=a%20b&n=1" }, true},
		{"query first value counts", func(r *Request) { r.RawQuery = "n=x&q=a+b&n=1" }, false},
		{"query escaped regex value", func(r *Request) { r.RawQuery = "q=a+b&n=%34%32" }, true},
		{"query escaped name", func(r *Request) { r.RawQuery = "%71=a+b&n=1" }, true},
		{"query name is case-sensitive", func(r *Request) { r.RawQuery = "Q=a+b&n=1" }, false},
		{"query missing", func(r *Request) { r.RawQuery = "n=1" }, false},
		{"query bad escape", func(r *Request) { r.RawQuery = "q=a%2&n=1" }, false},
		{"query semicolon pair skipped", func(r *Request) { r.RawQuery = "q=a+b;x=1&n=1" }, false},
		{"query empty pairs", func(r *Request) { r.RawQuery = "&&q=a+b&&n=7&" }, true},
	}
	for _, tc := range tests {
		r := good()
		tc.edit(&r)
		if got := tbl.Match(&r) != nil; got != tc.match {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.match)
		}
	}
}

func TestFirstMatchWinsAcrossSegments(t *testing.T) {
	// Precedence order mixes segment-bound and segment-free routes; the
	// bucketing must keep the first match of the full list.
	routes := []ir.Route{
		route("exact-a", exact("/a/x")),
		route("regex", regex("/a/.*|/b/y")),
		route("prefix-a", prefix("/a")),
		route("prefix-b", prefix("/b")),
		route("root", prefix("/")),
		route("late-c", prefix("/c")), // shadowed by root
	}
	tbl := mustCompile(t, &ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: routes}}})
	tests := []struct{ path, want string }{
		{"/a/x", "exact-a"},
		{"/a/z", "regex"},
		{"/a", "prefix-a"},
		{"/b/y", "regex"},
		{"/b/z", "prefix-b"},
		{"/c/1", "root"},
		{"/", "root"},
		{"", "root"},
	}
	for _, tc := range tests {
		if got := matchName(tbl, &Request{Path: tc.path}); got != tc.want {
			t.Errorf("path %q: got %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestCompileErrorsNameTheObject(t *testing.T) {
	tests := []struct {
		name string
		vh   ir.VirtualHost
		want []string
	}{
		{"bad path regex", ir.VirtualHost{Name: "ns/gw/l", Routes: []ir.Route{route("r1", regex("/(["))}},
			[]string{`virtual host "ns/gw/l"`, `route "r1"`, "match.path", "regular expression"}},
		{"bad header regex", ir.VirtualHost{Name: "v", Routes: []ir.Route{{Name: "r2", Match: ir.Match{Headers: []ir.ValueMatch{{Type: ir.StringRegex, Name: "X", Value: "("}}}}}},
			[]string{`route "r2"`, "match.headers[0]"}},
		{"unknown path type", ir.VirtualHost{Name: "v", Routes: []ir.Route{{Name: "r3", Match: ir.Match{Path: ir.PathMatch{Type: "Glob"}}}}},
			[]string{`route "r3"`, `unknown type "Glob"`}},
		{"prefix rewrite on exact", ir.VirtualHost{Name: "v", Routes: []ir.Route{{Name: "r4", Match: exact("/a"),
			Filters: []ir.Filter{{Rewrite: &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/b"}}}}}}},
			[]string{`route "r4"`, "filters[0]", "ReplacePrefixMatch"}},
		{"two fields in one filter", ir.VirtualHost{Name: "v", Routes: []ir.Route{{Name: "r5", Match: prefix("/"),
			Filters: []ir.Filter{{RequestHeaders: &ir.HeaderModifier{}, ResponseHeaders: &ir.HeaderModifier{}}}}}},
			[]string{`route "r5"`, "exactly one"}},
		{"mirror denominator 0", ir.VirtualHost{Name: "v", Routes: []ir.Route{{Name: "r6", Match: prefix("/"),
			Filters: []ir.Filter{{Mirror: &ir.Mirror{Backend: backend("m", 1, 80)}}}}}},
			[]string{`route "r6"`, "denominator"}},
		{"bad endpoint port", ir.VirtualHost{Name: "v", Routes: []ir.Route{{Name: "r7", Match: prefix("/"),
			Backends: []ir.Backend{{Name: "ns/svc:80", Weight: 1, Endpoints: []ir.Endpoint{{Address: "10.0.0.1", Port: 0}}}}}}},
			[]string{`route "r7"`, `backends[0] "ns/svc:80"`}},
		{"bad redirect code", ir.VirtualHost{Name: "v", Routes: []ir.Route{{Name: "r8", Match: prefix("/"),
			Filters: []ir.Filter{{Redirect: &ir.Redirect{StatusCode: 200}}}}}},
			[]string{`route "r8"`, "statusCode 200"}},
		{"bad hostname", ir.VirtualHost{Name: "v", Hostname: "a.*.com"}, []string{`virtual host "v"`, "wildcard"}},
		{"bad route hostname", ir.VirtualHost{Name: "v", Routes: []ir.Route{route("r9", prefix("/"), "*")}},
			[]string{`route "r9"`, "wildcard"}},
	}
	for _, tc := range tests {
		_, err := Compile(&ir.Listener{Name: "l", VirtualHosts: []ir.VirtualHost{tc.vh}}, nil)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

func TestNormalizeHostname(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM":       "example.com",
		"example.com.:8443": "example.com",
		"[::1]:80":          "[::1]",
		"[::1]":             "[::1]",
		"::1":               "::1",
		"10.0.0.1:80":       "10.0.0.1",
		"":                  "",
		"[bad":              "[bad",
	} {
		if got := NormalizeHostname(in); got != want {
			t.Errorf("NormalizeHostname(%q) = %q, want %q", in, got, want)
		}
	}
}
