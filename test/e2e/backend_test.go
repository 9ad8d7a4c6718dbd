package e2e

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/false-systems/rauta/internal/echo"
)

// backend is an in-process echo server on a loopback port.
type backend struct {
	name  string
	port  int
	count atomic.Int64 // requests received

	mu    sync.Mutex
	paths []string // the first maxPaths request paths, in arrival order
}

const maxPaths = 4096

// seen returns a copy of the paths received so far.
func (b *backend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.paths...)
}

// startBackend serves echo.Handler(name) on 127.0.0.1 until the test ends.
func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("backend %s: listen: %v", name, err)
	}
	b := &backend{name: name, port: ln.Addr().(*net.TCPAddr).Port}
	h := echo.Handler(name)
	// echo.NewServer speaks HTTP/1.1 and h2c prior knowledge, as the
	// appProtocol kubernetes.io/h2c test needs.
	srv := echo.NewServer("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.count.Add(1)
		b.mu.Lock()
		if len(b.paths) < maxPaths {
			b.paths = append(b.paths, r.Method+" "+r.URL.RequestURI())
		}
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("backend %s: serve: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		// Close, not Shutdown: hijacked WebSocket connections and the
		// gateway's idle pool must not hold the test open.
		_ = srv.Close()
		<-done
	})
	return b
}

// deadPort returns a loopback port with nothing listening on it.
func deadPort(t testing.TB) int { return freePort(t) }
