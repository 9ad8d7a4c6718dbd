package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// A backend's response head over MaxResponseHeaderBytes is answered 502 on
// every forwarding path (nginx and HAProxy refuse past 4-16 KiB; the
// engine took up to 1 MiB and net/http's Transport 10 MiB before), and one
// under it is relayed: the HTTP/1.1 engine (an HTTP/1.1 client), the
// pooled path (an HTTP/2 client to an HTTP/1.1 backend) and the Transport
// (an h2c backend).
func TestBackendResponseHeadLimit(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := 1 << 10
		if r.URL.Path == "/big" {
			size = 256 << 10
		}
		w.Header().Set("X-Big", strings.Repeat("a", size))
		_, _ = w.Write([]byte("ok"))
	})
	h1srv := httptest.NewServer(handler)
	t.Cleanup(h1srv.Close)
	h2srv := httptest.NewUnstartedServer(handler)
	h2srv.Config.Protocols = new(http.Protocols)
	h2srv.Config.Protocols.SetUnencryptedHTTP2(true)
	h2srv.Start()
	t.Cleanup(h2srv.Close)

	h1b := ir.Backend{Name: "default/h1:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, h1srv.Listener.Addr().String())}}
	h2b := ir.Backend{Name: "default/h2c:80", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, h2srv.Listener.Addr().String())}}
	snap := &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("h1", catchAll(prefixRoute("h1", "/", h1b))),
		httpListener("h2c", catchAll(prefixRoute("h2c", "/", h2b))),
	}}
	p := startProxy(t, snap, Options{MaxResponseHeaderBytes: 64 << 10})

	h1client := newClient()
	h2client := h2cClient()
	for _, tc := range []struct {
		path     string
		listener string
		client   *http.Client
	}{
		{"engine", "h1", h1client},
		{"pooled", "h1", h2client},
		{"transport", "h2c", h1client},
	} {
		for _, want := range []struct {
			path   string
			status int
		}{{"/small", http.StatusOK}, {"/big", http.StatusBadGateway}} {
			resp, err := tc.client.Get(p.url(t, tc.listener) + want.path)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.path, want.path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != want.status {
				t.Errorf("%s path, %s: status %d, want %d", tc.path, want.path, resp.StatusCode, want.status)
			}
		}
	}
}
