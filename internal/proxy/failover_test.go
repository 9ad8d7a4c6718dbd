package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// hangUpBackend accepts connections and closes each at once, before any
// response byte (a crashing backend); it counts the connections.
func hangUpBackend(t *testing.T) (ir.Endpoint, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return endpointOf(t, ln.Addr().String()), &n
}

func twoEndpoints(name string, live *echoBackend, dead ir.Endpoint) ir.Backend {
	b := live.backend(1)
	b.Name = name
	b.Endpoints = append(b.Endpoints, dead)
	return b
}

// clients returns an HTTP/1.1 client (the HTTP/1.1 engine) and an h2c one
// (net/http's handler over the engine's pool, pooled.go).
func engines() map[string]*http.Client {
	return map[string]*http.Client{"http1": newClient(), "h2c": h2cClient()}
}

// Finding 7 of issue 14: with one of two endpoints refusing connections,
// 10 of 20 requests got 502; nginx's proxy_next_upstream gets 20 of 20.
func TestDeadEndpointRetriedElsewhere(t *testing.T) {
	for name, c := range engines() {
		for _, health := range []lb.HealthOptions{{}, {Disable: true}} {
			live := newEchoBackend(t, "live")
			b := twoEndpoints("default/svc:80", live, closedPort(t))
			p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{Health: health})
			for i := range 20 {
				resp, e, body := do(t, c, mustReq(t, "GET", p.url(t, "l")+"/x", nil))
				if resp.StatusCode != 200 || e.Backend != "live" {
					t.Fatalf("%s %+v: GET %d: %d %q", name, health, i, resp.StatusCode, body)
				}
			}
			retries := p.counter(t, "rauta_upstream_retries_total", "backend", b.Name)
			ejections := p.counter(t, "rauta_upstream_ejections_total", "backend", b.Name)
			switch {
			case !health.Disable && (retries != 1 || ejections != 1):
				// The first failure ejects the dead endpoint for 30 s.
				t.Errorf("%s: %v retries, %v ejections; want 1 and 1", name, retries, ejections)
			case health.Disable && (retries < 5 || retries > 15 || ejections != 0):
				// Without ejection, about every other request is retried.
				t.Errorf("%s, ejection off: %v retries, %v ejections; want about 10 and 0", name, retries, ejections)
			}
		}
	}
}

// A backend that closes before answering is ejected after the first time
// and retried past: it sees one connection of 20 requests.
func TestHangUpEndpointEjected(t *testing.T) {
	for name, c := range engines() {
		live := newEchoBackend(t, "live")
		dead, conns := hangUpBackend(t)
		b := twoEndpoints("default/svc:80", live, dead)
		p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{})
		for i := range 20 {
			resp, _, body := do(t, c, mustReq(t, "GET", p.url(t, "l")+"/x", nil))
			if resp.StatusCode != 200 {
				t.Fatalf("%s: GET %d: %d %q", name, i, resp.StatusCode, body)
			}
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("%s: the hanging-up endpoint got %d connections, want 1 (ejected after it)", name, n)
		}
	}
}

// Only requests that are safe to repeat move: a POST without an
// idempotency key that met the dead endpoint gets 502; with a key, or a
// PUT, it moves.
func TestNonIdempotentNotRetried(t *testing.T) {
	for name, c := range engines() {
		live := newEchoBackend(t, "live")
		b := twoEndpoints("default/svc:80", live, closedPort(t))
		p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{Health: lb.HealthOptions{Disable: true}})
		count := func(method, key string) (ok, bad int) {
			for range 10 {
				req := mustReq(t, method, p.url(t, "l")+"/x", strings.NewReader("payload"))
				if key != "" {
					req.Header.Set("Idempotency-Key", key)
				}
				resp, _, _ := do(t, c, req)
				switch resp.StatusCode {
				case 200:
					ok++
				case http.StatusBadGateway:
					bad++
				default:
					t.Fatalf("%s %s: status %d", name, method, resp.StatusCode)
				}
			}
			return ok, bad
		}
		// Round robin alternates: 5 of 10 meet the dead endpoint.
		if ok, bad := count("POST", ""); ok != 5 || bad != 5 {
			t.Errorf("%s: POST without key: %d ok, %d 502; want 5 and 5 (never retried)", name, ok, bad)
		}
		if ok, bad := count("POST", "k-1"); ok != 10 || bad != 0 {
			t.Errorf("%s: POST with Idempotency-Key: %d ok, %d 502; want 10 ok", name, ok, bad)
		}
		if ok, bad := count("PUT", ""); ok != 10 || bad != 0 {
			t.Errorf("%s: PUT: %d ok, %d 502; want 10 ok", name, ok, bad)
		}
		live.mu.Lock()
		posts := 0
		for _, e := range live.seen {
			if e.Method == "POST" && e.Header["Idempotency-Key"] == nil {
				posts++
			}
		}
		live.mu.Unlock()
		if posts != 5 {
			t.Errorf("%s: live backend saw %d POSTs without key, want 5", name, posts)
		}
	}
}

// Under many concurrent failures, retries in flight stay within the
// budget: 20% of requests in flight, at least 3. The live endpoint holds
// every request until the test has seen all of them arrive, so retries
// stay in flight together.
func TestRetryBudgetBoundsRetries(t *testing.T) {
	for name, c := range engines() {
		const n = 20
		arrived := make(chan struct{}, 2*n)
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			io.WriteString(w, "ok")
		}))
		dead, conns := hangUpBackend(t)
		b := ir.Backend{Name: "default/svc:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, slow.Listener.Addr().String()), dead}}
		p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{Health: lb.HealthOptions{Disable: true}})
		var wg sync.WaitGroup
		var ok, bad atomic.Int64
		for range n {
			wg.Go(func() {
				resp, err := c.Get(p.url(t, "l") + "/x")
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case http.StatusBadGateway:
					bad.Add(1)
				}
			})
		}
		// Every request either reached the slow endpoint or was answered
		// 502; wait for that, then let the held ones finish.
		deadline := time.After(10 * time.Second)
		for got := 0; int64(got)+bad.Load() < n; {
			select {
			case <-arrived:
				got++
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%s: %d arrived, %d refused of %d", name, got, bad.Load(), n)
			}
		}
		close(release)
		wg.Wait()
		slow.Close()
		retries := p.counter(t, "rauta_upstream_retries_total", "backend", b.Name)
		overflow := p.counter(t, "rauta_upstream_retry_budget_exhausted_total", "backend", b.Name)
		failed := conns.Load()
		if failed < 4 {
			t.Fatalf("%s: only %d requests met the failing endpoint; the test needs more than the budget's 3", name, failed)
		}
		// With at most 20 requests in flight, 20% is 4; the minimum 3
		// applies below 15. Either way no more than 4 retries at once, and
		// all retries are held, so at most 4 in total.
		if retries > 4 || retries < 3 {
			t.Errorf("%s: %v retries with %d failures, want 3 or 4 (the budget)", name, retries, failed)
		}
		if retries+overflow != float64(failed) || float64(bad.Load()) != overflow || ok.Load() != n-bad.Load() {
			t.Errorf("%s: %d failures, %v retried, %v over budget, %d ok, %d 502", name, failed, retries, overflow, ok.Load(), bad.Load())
		}
	}
}

// Only failures that say the endpoint is down eject it and move the
// request: not a request timeout, a malformed answer, or a failure on a
// reused connection (a backend may close an idle one at any time).
func TestEndpointDown(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	read := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		err    error
		silent bool
		want   bool
	}{
		{dial, false, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, false, true},
		{read, true, true},
		{read, false, false},
		{io.EOF, true, true},
		{io.ErrUnexpectedEOF, true, true},
		{io.EOF, false, false},
		{os.ErrDeadlineExceeded, true, false},
		{h1.ErrBadResponse, true, false},
		{clientError{Err: io.EOF}, false, false},
		{clientError{Err: io.ErrUnexpectedEOF}, true, false},
	}
	// A dial given up because the request was (client gone, shutdown) is
	// not the endpoint's failure: the real error net's dialer returns.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, canceled := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if !isDialError(canceled) {
		t.Fatalf("a canceled dial gave %v, not a dial error: the case below tests nothing", canceled)
	}
	tests = append(tests, struct {
		err    error
		silent bool
		want   bool
	}{canceled, true, false})
	for _, tt := range tests {
		if got := endpointDown(tt.err, tt.silent); got != tt.want {
			t.Errorf("endpointDown(%v, silent %v) = %v", tt.err, tt.silent, got)
		}
	}
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"} {
		if !idempotent(m, false) {
			t.Errorf("%s not idempotent", m)
		}
	}
	if idempotent("POST", false) || idempotent("PATCH", false) || !idempotent("POST", true) {
		t.Error("POST/PATCH idempotency wrong")
	}
}

// The Transport path (TLS and h2c backends, requests outside the pooled
// path's subset) moves a request safe to repeat off an endpoint whose dial
// failed and ejects it, as the pooled path does; a POST is not moved.
func TestDeadEndpointRetriedElsewhereTransport(t *testing.T) {
	ca := newTestCA(t)
	live := newHTTPSBackend(t, ca.leaf(t, []string{"backend.example.com"}))
	b := tlsIRBackend(t, live.srv.Listener.Addr().String(), &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem})
	b.Endpoints = append(b.Endpoints, closedPort(t))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{Health: lb.HealthOptions{Disable: true}})
	for name, c := range engines() {
		for i := range 20 {
			resp, _, body := do(t, c, mustReq(t, "GET", p.url(t, "l")+"/x", nil))
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "secure") {
				t.Fatalf("%s: GET %d: %d %q", name, i, resp.StatusCode, body)
			}
		}
	}
	if retries := p.counter(t, "rauta_upstream_retries_total", "backend", b.Name); retries < 5 {
		t.Errorf("%v retries over 40 requests to two endpoints, one dead, without ejection; want about 20", retries)
	}
	failed := 0
	for range 20 {
		resp, _, _ := do(t, newClient(), mustReq(t, "POST", p.url(t, "l")+"/x", strings.NewReader("once")))
		if resp.StatusCode == 502 {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no POST of 20 failed with one of two endpoints dead: a request that is not idempotent was moved")
	}
}
