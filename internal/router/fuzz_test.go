package router

import (
	"net/http"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func fuzzTable(t testing.TB) (*Table, []string) {
	exactPaths := []string{"/", "/a", "/a/b", "/a%2Fb", "/x/y/z", "//double", "/ü"}
	var routes []ir.Route
	for i, p := range exactPaths {
		r := route("exact", exact(p))
		r.Name = "exact" + p
		if i%2 == 0 {
			r.Hostnames = []string{"*.fuzz.test"}
		}
		routes = append(routes, r)
	}
	hm := prefix("/h")
	hm.Headers = []ir.ValueMatch{{Type: ir.StringRegex, Name: "x-a", Value: "[a-z]+"}}
	hm.QueryParams = []ir.ValueMatch{{Type: ir.StringRegex, Name: "q", Value: ".*"}}
	routes = append(routes,
		ir.Route{Name: "hdr", Match: hm},
		route("re", regex(`/re/[^/]+`)),
		route("pfx", prefix("/p/")),
	)
	l := &ir.Listener{VirtualHosts: []ir.VirtualHost{
		{Name: "vh", Routes: routes},
	}}
	return mustCompile(t, l), exactPaths
}

// FuzzMatch feeds random hosts, paths, methods, queries and headers to a
// compiled table: it must never panic, and each Exact route must match its
// own path whatever else the request carries.
func FuzzMatch(f *testing.F) {
	f.Add("a.fuzz.test", "/a", "GET", "q=1", "x-a", "abc", uint8(0))
	f.Add("", "", "", "", "", "", uint8(3))
	f.Add("[::1", "/h/x", "POST", "q=%zz&&=;", "X-A", "\x00", uint8(1))
	f.Add("A.FUZZ.TEST.:99", "/re/ü", "\xff", "%", ":", "", uint8(6))
	tbl, exactPaths := fuzzTable(f)
	f.Fuzz(func(t *testing.T, host, path, method, query, hname, hval string, pick uint8) {
		h := http.Header{hname: {hval}}
		r := &Request{Host: host, Path: path, Method: method, RawQuery: query, Header: HTTPHeader(h), ClientIP: hval}
		if rt := tbl.Match(r); rt != nil {
			rt.PickBackend(uint64(pick))
		}
		i := int(pick) % len(exactPaths)
		p := exactPaths[i]
		r.Path = p
		// Even routes live in the *.fuzz.test group, odd ones in the group
		// without hostnames, which a *.fuzz.test host can never reach.
		label := "h" + labelChars(host)
		if i%2 == 0 {
			r.Host = label + ".FUZZ.test:8080"
		} else {
			r.Host = label + ".other.test"
		}
		rt := tbl.Match(r)
		if rt == nil || rt.Name != "exact"+p {
			got := "<nil>"
			if rt != nil {
				got = rt.Name
			}
			t.Fatalf("exact path %q on host %q matched %s", p, r.Host, got)
		}
	})
}

// labelChars keeps the letters and digits of s, so the fuzzer varies a
// host label without leaving the hostname group under test.
func labelChars(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' {
			b = append(b, c)
		}
	}
	return string(b)
}
