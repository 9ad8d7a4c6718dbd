package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/false-systems/rauta/internal/echo"
)

func TestForwardedHeaders(t *testing.T) {
	be := startBackend(t, "hdr")
	port := freePort(t)
	startGateway(t, map[string]string{
		"all.yaml": httpGateway(port) + servicesYAML(be) + routeYAML("hdr", nil, catchAll("hdr")),
	})
	c := newClient()

	t.Run("X-Forwarded-*", func(t *testing.T) {
		rep := get(t, c, port, "hdr.test", "/").reply(t)
		want := map[string][]string{
			"X-Forwarded-For":   {"127.0.0.1"},
			"X-Forwarded-Proto": {"http"},
			"X-Forwarded-Host":  {"hdr.test"},
		}
		for name, w := range want {
			if got := headerValues(rep, name); !slices.Equal(got, w) {
				t.Errorf("%s = %q, want %q", name, got, w)
			}
		}
	})

	t.Run("X-Forwarded-For appends, X-Forwarded-Proto is not trusted", func(t *testing.T) {
		rep := get(t, c, port, "hdr.test", "/",
			"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test").reply(t)
		if got := headerValues(rep, "X-Forwarded-For"); !slices.Equal(got, []string{"203.0.113.7, 127.0.0.1"}) {
			t.Errorf("X-Forwarded-For = %q, want [203.0.113.7, 127.0.0.1]", got)
		}
		if got := headerValues(rep, "X-Forwarded-Proto"); !slices.Equal(got, []string{"http"}) {
			t.Errorf("X-Forwarded-Proto = %q: a client-supplied value reached the backend", got)
		}
		if got := headerValues(rep, "X-Forwarded-Host"); !slices.Equal(got, []string{"hdr.test"}) {
			t.Errorf("X-Forwarded-Host = %q: a client-supplied value reached the backend", got)
		}
	})

	t.Run("hop-by-hop headers do not reach the backend", func(t *testing.T) {
		resp, body := raw(t, port, "GET /hop HTTP/1.1\r\n"+
			"Host: hdr.test\r\n"+
			"Connection: keep-alive, X-Secret\r\n"+
			"X-Secret: listed-in-connection\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"TE: gzip\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Upgrade: something\r\n"+
			"X-End-To-End: kept\r\n"+
			"\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
		}
		var rep echo.Reply
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("body is not an echo reply: %v\n%s", err, body)
		}
		for _, name := range []string{"Connection", "X-Secret", "Keep-Alive", "Te", "Proxy-Connection", "Upgrade"} {
			if got := headerValues(rep, name); got != nil {
				t.Errorf("hop-by-hop header %s reached the backend: %q", name, got)
			}
		}
		if got := headerValues(rep, "X-End-To-End"); !slices.Equal(got, []string{"kept"}) {
			t.Errorf("X-End-To-End = %q, want [kept]", got)
		}
	})
}
