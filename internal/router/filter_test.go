package router

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func TestHeaderModifier(t *testing.T) {
	m := NewHeaderModifier(&ir.HeaderModifier{
		Set:    []ir.Header{{Name: "x-set", Value: "s"}, {Name: "X-Both", Value: "set"}},
		Add:    []ir.Header{{Name: "X-ADD", Value: "a"}, {Name: "x-new", Value: "n"}, {Name: "x-both", Value: "add"}},
		Remove: []string{"x-remove", "X-Missing"},
	})
	h := http.Header{
		"X-Set":    {"old1", "old2"},
		"X-Add":    {"keep"},
		"X-Remove": {"gone"},
		"X-Other":  {"untouched"},
	}
	m.Apply(h)
	want := http.Header{
		"X-Set":   {"s"},
		"X-Both":  {"set", "add"}, // set runs before add
		"X-Add":   {"keep", "a"},
		"X-New":   {"n"},
		"X-Other": {"untouched"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v, want %v", h, want)
	}
	// Values stored by one request must not leak into the next: appending
	// to a header another Apply set must not write into shared storage.
	h2 := http.Header{}
	m.Apply(h2)
	h2["X-New"] = append(h2["X-New"], "mutated")
	h3 := http.Header{}
	m.Apply(h3)
	if got := h3["X-New"]; len(got) != 1 || got[0] != "n" {
		t.Errorf("shared value slice was modified: %v", got)
	}
}

func TestReplacePrefix(t *testing.T) {
	// The table from the Gateway API HTTPPathModifier documentation.
	tests := []struct{ path, prefix, repl, want string }{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		// The brief's examples and edge cases.
		{"/foo/baz", "/foo", "/bar", "/bar/baz"},
		{"/foo/baz", "/foo", "/", "/baz"},
		{"/anything", "/", "/api", "/api/anything"},
		{"/", "/", "/api", "/api/"},
		{"/foobar", "/foo", "/x", "/foobar"}, // not under the prefix: unchanged
		{"/foo/a%2Fb", "/foo", "/x", "/x/a%2Fb"},
	}
	for _, tc := range tests {
		if got := ReplacePrefix(tc.path, tc.prefix, tc.repl); got != tc.want {
			t.Errorf("ReplacePrefix(%q, %q, %q) = %q, want %q", tc.path, tc.prefix, tc.repl, got, tc.want)
		}
	}
}

func compileOneFilter(t *testing.T, f ir.Filter, m ir.Match, port uint32) Filter {
	t.Helper()
	r := ir.Route{Name: "r", Match: m, Filters: []ir.Filter{f}}
	tbl := mustCompile(t, &ir.Listener{Port: port, VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{r}}}})
	return tbl.Match(&Request{Path: m.Path.Value}).Filters[0]
}

func TestRedirectLocation(t *testing.T) {
	full := func(v string) *ir.PathModifier { return &ir.PathModifier{Type: ir.ReplaceFullPath, Value: v} }
	pfx := func(v string) *ir.PathModifier { return &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: v} }
	tests := []struct {
		name         string
		redirect     ir.Redirect
		match        ir.Match
		listenerPort uint32
		scheme, host string
		path, query  string
		want         string
		wantCode     int
	}{
		{name: "hostname only keeps scheme, listener port 80 omitted",
			redirect: ir.Redirect{Hostname: "example.org"}, listenerPort: 80,
			scheme: "http", host: "example.com:8080", path: "/a", want: "http://example.org/a", wantCode: 302},
		{name: "no scheme, listener port kept",
			redirect: ir.Redirect{Hostname: "example.org", StatusCode: 301}, listenerPort: 8080,
			scheme: "http", host: "example.com", path: "/a", query: "x=1", want: "http://example.org:8080/a?x=1", wantCode: 301},
		{name: "scheme change to https drops listener port",
			redirect: ir.Redirect{Scheme: "https"}, listenerPort: 80,
			scheme: "http", host: "example.com", path: "/", want: "https://example.com/", wantCode: 302},
		{name: "scheme change to https from a non-default listener port",
			redirect: ir.Redirect{Scheme: "https"}, listenerPort: 8080,
			scheme: "http", host: "example.com:8080", path: "/p", want: "https://example.com/p"},
		{name: "scheme change to http from https",
			redirect: ir.Redirect{Scheme: "http"}, listenerPort: 443,
			scheme: "https", host: "example.com", path: "/", want: "http://example.com/"},
		{name: "https listener, no scheme, port 443 omitted",
			redirect: ir.Redirect{Hostname: "example.org"}, listenerPort: 443,
			scheme: "https", host: "example.com", path: "/", want: "https://example.org/"},
		{name: "explicit port",
			redirect: ir.Redirect{Port: 8443}, listenerPort: 80,
			scheme: "http", host: "example.com", path: "/", want: "http://example.com:8443/"},
		{name: "explicit default port omitted",
			redirect: ir.Redirect{Scheme: "https", Port: 443}, listenerPort: 80,
			scheme: "http", host: "example.com", path: "/", want: "https://example.com/"},
		{name: "explicit port with scheme",
			redirect: ir.Redirect{Scheme: "https", Port: 8443}, listenerPort: 80,
			scheme: "http", host: "example.com", path: "/", want: "https://example.com:8443/"},
		{name: "explicit port 80 on https is shown",
			redirect: ir.Redirect{Scheme: "https", Port: 80}, listenerPort: 80,
			scheme: "http", host: "example.com", path: "/", want: "https://example.com:80/"},
		{name: "full path",
			redirect: ir.Redirect{Path: full("/new")}, match: prefix("/old"), listenerPort: 80,
			scheme: "http", host: "example.com", path: "/old/x", query: "a=b", want: "http://example.com/new?a=b"},
		{name: "prefix path",
			redirect: ir.Redirect{Path: pfx("/new")}, match: prefix("/old"), listenerPort: 80,
			scheme: "http", host: "example.com", path: "/old/x", want: "http://example.com/new/x"},
		{name: "prefix path to root",
			redirect: ir.Redirect{Path: pfx("/")}, match: prefix("/old"), listenerPort: 80,
			scheme: "http", host: "example.com", path: "/old", want: "http://example.com/"},
		{name: "IPv6 host with port",
			redirect: ir.Redirect{}, listenerPort: 8080,
			scheme: "http", host: "[::1]:8080", path: "/", want: "http://[::1]:8080/"},
		{name: "request host case and trailing dot",
			redirect: ir.Redirect{Scheme: "https"}, listenerPort: 80,
			scheme: "http", host: "Example.com.", path: "/", want: "https://Example.com/"},
		{name: "303 status", redirect: ir.Redirect{StatusCode: 303}, listenerPort: 80,
			scheme: "http", host: "h", path: "/", want: "http://h/", wantCode: 303},
	}
	for _, tc := range tests {
		m := tc.match
		if m.Path.Type == "" {
			m = prefix("/")
		}
		rd := tc.redirect
		f := compileOneFilter(t, ir.Filter{Redirect: &rd}, m, tc.listenerPort)
		if f.Kind != FilterRedirect {
			t.Fatalf("%s: kind %d", tc.name, f.Kind)
		}
		if got := f.Redirect.Location(tc.scheme, tc.host, tc.path, tc.query); got != tc.want {
			t.Errorf("%s: Location = %q, want %q", tc.name, got, tc.want)
		}
		if tc.wantCode != 0 && f.Redirect.StatusCode != tc.wantCode {
			t.Errorf("%s: status %d, want %d", tc.name, f.Redirect.StatusCode, tc.wantCode)
		}
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name     string
		rw       ir.Rewrite
		match    ir.Match
		path     string
		wantPath string
		changed  bool
		wantHost string
	}{
		{"hostname only", ir.Rewrite{Hostname: "internal.svc"}, prefix("/"), "/a", "/a", false, "internal.svc"},
		{"full path", ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/one"}}, prefix("/full/one"), "/full/one/two", "/one", true, ""},
		{"prefix", ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/one"}}, prefix("/prefix/one"), "/prefix/one/two", "/one/two", true, ""},
		{"strip prefix", ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/"}}, prefix("/strip-prefix"), "/strip-prefix/three", "/three", true, ""},
		{"strip prefix exactly", ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/"}}, prefix("/strip-prefix/"), "/strip-prefix", "/", true, ""},
	}
	for _, tc := range tests {
		rw := tc.rw
		f := compileOneFilter(t, ir.Filter{Rewrite: &rw}, tc.match, 80)
		got, changed := f.Rewrite.Path(tc.path)
		if got != tc.wantPath || changed != tc.changed {
			t.Errorf("%s: Path(%q) = %q, %v; want %q, %v", tc.name, tc.path, got, changed, tc.wantPath, tc.changed)
		}
		if f.Rewrite.Hostname != tc.wantHost {
			t.Errorf("%s: hostname %q, want %q", tc.name, f.Rewrite.Hostname, tc.wantHost)
		}
	}
}

func TestMirrorSample(t *testing.T) {
	f := compileOneFilter(t, ir.Filter{Mirror: &ir.Mirror{Backend: backend("m", 1, 9), Numerator: 1, Denominator: 4}}, prefix("/"), 80)
	if f.Kind != FilterMirror || f.Mirror.Backend.Name != "m" {
		t.Fatalf("mirror not compiled: %+v", f)
	}
	n := 0
	for d := uint64(0); d < 400; d++ {
		if f.Mirror.Sample(d) {
			n++
		}
	}
	if n != 100 {
		t.Errorf("1/4 mirror sampled %d of 400 draws", n)
	}
	all := Mirror{Numerator: 1, Denominator: 1}
	if !all.Sample(12345) {
		t.Error("1/1 mirror skipped a request")
	}
}
