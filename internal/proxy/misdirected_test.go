package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// TestMisdirectedRequests: on an HTTPS port with several listeners, a
// request whose Host belongs to another listener than its TLS server name
// is answered 421; within one listener (a wildcard's names) it is served.
func TestMisdirectedRequests(t *testing.T) {
	one, two, wild := newEchoBackend(t, "one"), newEchoBackend(t, "two"), newEchoBackend(t, "wild")
	cert := newTestCert(t, "shared", []string{"example.org", "second.example.org", "*.wild.org"}, "")
	l := httpsListener("tls", []ir.Certificate{cert.ir},
		ir.VirtualHost{Name: "default/gw/second", Hostname: "second.example.org", Routes: []ir.Route{prefixRoute("two", "/", two.backend(1))}},
		ir.VirtualHost{Name: "default/gw/wild", Hostname: "*.wild.org", Routes: []ir.Route{prefixRoute("wild", "/", wild.backend(1))}},
		ir.VirtualHost{Name: "default/gw/any", Routes: []ir.Route{func() ir.Route {
			r := prefixRoute("one", "/", one.backend(1))
			r.Hostnames = []string{"example.org"}
			return r
		}()}})
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	addr := p.Addr("tls").String()
	for _, tc := range []struct {
		sni, host string
		status    int
		backend   string
	}{
		{"example.org", "example.org", 200, "one"},
		{"example.org", "second.example.org", 421, ""},
		{"example.org", "unknown.org", 404, ""}, // same (catch-all) listener, no route
		{"second.example.org", "second.example.org", 200, "two"},
		{"second.example.org", "example.org", 421, ""},
		{"a.wild.org", "b.wild.org:443", 200, "wild"},
		{"a.wild.org", "example.org", 421, ""},
		{"unknown.org", "example.org", 200, "one"},
		{"", "second.example.org", 200, "two"}, // no server name: nothing to compare
	} {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true}, DisableKeepAlives: true}}
		req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
		req.Host = tc.host
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("SNI %q Host %q: %v", tc.sni, tc.host, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || tc.backend != "" && res.Header.Get("X-Backend") != tc.backend {
			t.Errorf("SNI %q Host %q: %d from %q, want %d from %q", tc.sni, tc.host, res.StatusCode, res.Header.Get("X-Backend"), tc.status, tc.backend)
		}
	}
}
