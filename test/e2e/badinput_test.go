package e2e

import (
	"net/http"
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	be := startBackend(t, "sane")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"all.yaml": httpGateway(port) + servicesYAML(be) + routeYAML("sane", nil, catchAll("sane")),
	})
	c := newClient()

	cases := []struct {
		name    string
		payload string
		status  int
	}{
		// Every payload is longer than the 14 bytes of "PRI * HTTP/2.0":
		// shorter ones wait in net/http's h2c preface check until the
		// ReadHeaderTimeout (10s) before they are answered.
		{"request line without version", "GET /index.html\r\n\r\n", http.StatusBadRequest},
		{"request line garbage", "NOT A REQUEST\r\n\r\n", http.StatusBadRequest},
		{"request line with extra field", "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", http.StatusBadRequest},
		{"header name with space", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", http.StatusBadRequest},
		{"header value with NUL", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", http.StatusBadRequest},
		{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", http.StatusBadRequest},
		{"conflicting Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", http.StatusBadRequest},
		{"URI over 8 KiB", "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusRequestURITooLong},
		{"headers over 64 KiB", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := raw(t, port, tc.payload)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d; body %q", resp.StatusCode, tc.status, abbreviate(body))
			}
			g.alive(t)
			// The gateway keeps serving well-formed requests.
			res := get(t, c, port, "x.test", "/after")
			if res.status != http.StatusOK || res.reply(t).Backend != "sane" {
				t.Fatalf("next request: status %d, body %s", res.status, res.body)
			}
		})
	}

	t.Run("URI of exactly 8 KiB is served", func(t *testing.T) {
		target := "/" + strings.Repeat("a", 8<<10-1)
		res := get(t, c, port, "x.test", target)
		if res.status != http.StatusOK || res.reply(t).Path != target {
			t.Errorf("status %d for an 8192-byte target, want 200 with the path intact", res.status)
		}
	})
}
