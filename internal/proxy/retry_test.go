package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// flakyBackend fails the first ?fail= requests of each ?id= with ?code=
// (or, with ?mode=reset, resets the connection; ?mode=slow, answers after
// 300 ms), then answers 200 with the attempt number and the body it got.
type flakyBackend struct {
	mu   sync.Mutex
	hits map[string]int
	srv  *httptest.Server
}

func newFlakyBackend(t *testing.T) *flakyBackend {
	f := &flakyBackend{hits: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.hits[q.Get("id")]++
		n := f.hits[q.Get("id")]
		f.mu.Unlock()
		fail, _ := strconv.Atoi(q.Get("fail"))
		if n <= fail {
			switch q.Get("mode") {
			case "reset":
				c, _, _ := http.NewResponseController(w).Hijack()
				c.Close()
				return
			case "slow":
				time.Sleep(300 * time.Millisecond)
			}
			code, _ := strconv.Atoi(q.Get("code"))
			if code == 0 {
				code = 200
			}
			w.WriteHeader(code)
			io.WriteString(w, "failed attempt")
			return
		}
		fmt.Fprintf(w, "attempt %d body %q", n, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flakyBackend) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[id]
}

func TestRouteRetry(t *testing.T) {
	be := newFlakyBackend(t)
	backend := ir.Backend{Name: "default/flaky:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, be.srv.Listener.Addr().String())}}
	retry := func(name, prefix string, p *ir.Retry, to ir.Timeouts) ir.Route {
		r := prefixRoute(name, prefix, backend)
		r.Retry, r.Timeouts = p, to
		return r
	}
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("web", catchAll(
		retry("codes", "/codes", &ir.Retry{Codes: []int{500}, Attempts: 3, Backoff: 10 * time.Millisecond}, ir.Timeouts{}),
		retry("errors", "/errors", &ir.Retry{Attempts: 1, Backoff: 10 * time.Millisecond}, ir.Timeouts{BackendRequest: 100 * time.Millisecond}),
		retry("slowback", "/slowback", &ir.Retry{Codes: []int{500}, Attempts: 2, Backoff: 200 * time.Millisecond}, ir.Timeouts{}),
		retry("bounded", "/bounded", &ir.Retry{Codes: []int{500}, Attempts: 2, Backoff: 2 * time.Second}, ir.Timeouts{Request: 500 * time.Millisecond}),
	))}}
	p := startProxy(t, snap, Options{})
	base := p.url(t, "web")
	id := 0
	for _, client := range []struct {
		name string
		c    *http.Client
	}{{"http1", newClient()}, {"h2c", h2cClient()}} {
		send := func(method, path, body string) (int, string, string, time.Duration) {
			id++
			key := fmt.Sprintf("%s-%d", client.name, id)
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			req, _ := http.NewRequest(method, base+path+sep+"id="+key, strings.NewReader(body))
			start := time.Now()
			res, err := client.c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", client.name, path, err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res.StatusCode, string(b), key, time.Since(start)
		}
		for _, tc := range []struct {
			method, path, body string
			status             int
			hits               int
			answer             string
		}{
			// Two failures, three retries allowed: the third attempt
			// answers.
			{"GET", "/codes?fail=2&code=500", "", 200, 3, "attempt 3"},
			// Four failures exhaust 1 + 3 attempts: the last 500 passes.
			{"GET", "/codes?fail=4&code=500", "", 500, 4, "failed attempt"},
			// 503 is not a listed code: no retry.
			{"GET", "/codes?fail=1&code=503", "", 503, 1, "failed attempt"},
			// The body is replayed whole on the retry.
			{"POST", "/codes?fail=1&code=500", "payload", 200, 2, `body "payload"`},
			// Connection errors and backend timeouts are retried without
			// codes (HTTPRouteRetryConnectionError, ...BackendTimeout).
			{"GET", "/errors?fail=1&mode=reset", "", 200, 2, "attempt 2"},
			{"GET", "/errors?fail=1&mode=slow", "", 200, 2, "attempt 2"},
		} {
			status, body, key, _ := send(tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.answer) || be.count(key) != tc.hits {
				t.Errorf("%s %s %s: %d %q after %d backend hits; want %d %q after %d",
					client.name, tc.method, tc.path, status, body, be.count(key), tc.status, tc.answer, tc.hits)
			}
		}
		// The backoff is a minimum.
		if status, _, _, took := send("GET", "/slowback?fail=1&code=500", ""); status != 200 || took < 200*time.Millisecond {
			t.Errorf("%s: retry after %v with status %d; the backoff is 200ms", client.name, took, status)
		}
		// A retry that would outlast the request timeout is not made: the
		// failed answer passes at once.
		if status, _, key, took := send("GET", "/bounded?fail=1&code=500", ""); status != 500 || be.count(key) != 1 || took > 1500*time.Millisecond {
			t.Errorf("%s: %d after %v and %d hits; want the 500 at once", client.name, status, took, be.count(key))
		}
	}
	if n := p.counter(t, "rauta_upstream_retries_total", "backend", "default/flaky:80"); n < 10 {
		t.Errorf("retries counted %v", n)
	}
}
