package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

func TestHeaderFilters(t *testing.T) {
	be := newEchoBackend(t, "a")
	b := be.backend(1)
	// Backend filters run after route filters: the backend's Set wins.
	b.Filters = []ir.Filter{{RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Order", Value: "backend"}}}}}
	r := prefixRoute("r", "/", b)
	r.Filters = []ir.Filter{
		{RequestHeaders: &ir.HeaderModifier{
			Set:    []ir.Header{{Name: "x-set", Value: "set"}, {Name: "X-Order", Value: "route"}},
			Add:    []ir.Header{{Name: "X-Add", Value: "added"}},
			Remove: []string{"X-REMOVE"},
		}},
		{ResponseHeaders: &ir.HeaderModifier{
			Set:    []ir.Header{{Name: "X-Backend", Value: "hidden"}},
			Add:    []ir.Header{{Name: "X-Resp-Add", Value: "1"}},
			Remove: []string{"content-type"},
		}},
		// Filters run in order: this one sees the header the first set.
		{RequestHeaders: &ir.HeaderModifier{Add: []ir.Header{{Name: "X-Set", Value: "second"}}}},
	}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{})
	req := mustReq(t, "GET", p.url(t, "l")+"/", nil)
	req.Header.Set("X-Set", "client")
	req.Header.Set("X-Add", "client")
	req.Header.Set("X-Remove", "client")
	resp, e, _ := do(t, newClient(), req)
	h := http.Header(e.Header)
	want := map[string]string{"X-Set": "set,second", "X-Add": "client,added", "X-Order": "backend", "X-Remove": ""}
	for k, v := range want {
		if got := strings.Join(h[k], ","); got != v {
			t.Errorf("backend saw %s = %q, want %q", k, got, v)
		}
	}
	if got := resp.Header.Get("X-Backend"); got != "hidden" {
		t.Errorf("response X-Backend = %q, want the filter's value", got)
	}
	if got := resp.Header.Get("X-Resp-Add"); got != "1" {
		t.Errorf("response X-Resp-Add = %q", got)
	}
	if got, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("response Content-Type not removed: %q", got)
	}
}

func TestRedirectFilter(t *testing.T) {
	r := ir.Route{Name: "redir", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/old"}},
		Filters: []ir.Filter{{Redirect: &ir.Redirect{Scheme: "https", Hostname: "new.example.com",
			Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/new"}, StatusCode: 301}}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{})
	resp, _, _ := do(t, newClient(), mustReq(t, "GET", p.url(t, "l")+"/old/page?q=1", nil))
	if resp.StatusCode != 301 {
		t.Fatalf("status %d, want 301 (a redirect route without backends must not answer 500)", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Location"), "https://new.example.com/new/page?q=1"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
}

func TestRewriteFilter(t *testing.T) {
	be := newEchoBackend(t, "a")
	r := prefixRoute("rw", "/api/v1", be.backend(1))
	r.Filters = []ir.Filter{{Rewrite: &ir.Rewrite{Hostname: "internal.svc", Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/"}}}}
	full := prefixRoute("full", "/full", be.backend(1))
	full.Filters = []ir.Filter{{Rewrite: &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/replaced"}}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r, full))}}, Options{})
	tests := []struct{ path, wantURI, wantHost string }{
		{"/api/v1/users?id=7", "/users?id=7", "internal.svc"},
		{"/api/v1", "/", "internal.svc"},
		{"/api/v1/a%2Fb", "/a%2Fb", "internal.svc"},
		{"/full/x/y?k=v", "/replaced?k=v", ""},
	}
	for _, tc := range tests {
		req := mustReq(t, "GET", p.url(t, "l")+tc.path, nil)
		req.Host = "public.example.com"
		resp, e, _ := do(t, newClient(), req)
		wantHost := tc.wantHost
		if wantHost == "" {
			wantHost = "public.example.com"
		}
		if resp.StatusCode != 200 || e.URI != tc.wantURI || e.Host != wantHost {
			t.Errorf("%s: status %d, backend saw %q on host %q; want %q on %q", tc.path, resp.StatusCode, e.URI, e.Host, tc.wantURI, wantHost)
		}
		if got := http.Header(e.Header).Get("X-Forwarded-Host"); got != "public.example.com" {
			t.Errorf("%s: X-Forwarded-Host %q, want the original host", tc.path, got)
		}
	}
}

func TestWeightedSplit(t *testing.T) {
	a, b, c := newEchoBackend(t, "a"), newEchoBackend(t, "b"), newEchoBackend(t, "c")
	r := prefixRoute("split", "/", a.backend(70), b.backend(20), c.backend(10))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{})
	cl := newClient()
	counts := map[string]int{}
	const n = 1000
	for i := 0; i < n; i++ {
		_, e, _ := do(t, cl, mustReq(t, "GET", p.url(t, "l")+"/", nil))
		counts[e.Backend]++
	}
	// Binomial standard deviation at n=1000 is at most ~16; 5 of them is a
	// bound a correct splitter misses with negligible probability.
	for name, want := range map[string]int{"a": 700, "b": 200, "c": 100} {
		if got := counts[name]; got < want-75 || got > want+75 {
			t.Errorf("backend %s got %d of %d requests, want %d ± 75 (all: %v)", name, got, n, want, counts)
		}
	}
}

func TestMirror(t *testing.T) {
	main, mirror := newEchoBackend(t, "main"), newEchoBackend(t, "mirror")
	r := prefixRoute("m", "/", main.backend(1))
	r.Filters = []ir.Filter{
		{RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Before-Mirror", Value: "1"}}}},
		{Mirror: &ir.Mirror{Backend: mirror.backend(1), Numerator: 1, Denominator: 1}},
	}
	half := prefixRoute("half", "/half", main.backend(1))
	half.Filters = []ir.Filter{{Mirror: &ir.Mirror{Backend: mirror.backend(1), Numerator: 1, Denominator: 2}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(half, r))}}, Options{MirrorBodyLimit: 1024})
	cl := newClient()

	resp, e, _ := do(t, cl, mustReq(t, "POST", p.url(t, "l")+"/copy?x=1", strings.NewReader("payload")))
	if resp.StatusCode != 200 || e.Backend != "main" || e.Body != "payload" {
		t.Fatalf("main request: status %d backend %q body %q", resp.StatusCode, e.Backend, e.Body)
	}
	select {
	case m := <-mirror.hits:
		if m.URI != "/copy?x=1" || m.Body != "payload" || m.Method != "POST" {
			t.Errorf("mirror got %s %s body %q", m.Method, m.URI, m.Body)
		}
		if http.Header(m.Header).Get("X-Before-Mirror") != "1" {
			t.Error("mirror copy lacks the header set by the filter before it")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("mirror received nothing")
	}

	// A body over the limit is forwarded whole but not mirrored.
	big := strings.Repeat("x", 4096)
	resp, e, _ = do(t, cl, mustReq(t, "POST", p.url(t, "l")+"/big", strings.NewReader(big)))
	if resp.StatusCode != 200 || e.Body != big {
		t.Fatalf("big body: status %d, main got %d bytes", resp.StatusCode, len(e.Body))
	}

	// 1/2 sampling over 400 requests.
	drain(mirror.hits)
	for i := 0; i < 400; i++ {
		do(t, cl, mustReq(t, "GET", p.url(t, "l")+"/half", nil))
	}
	time.Sleep(200 * time.Millisecond)
	if got := waitCount(mirror.hits, 150, 3*time.Second); got < 150 || got > 250 {
		t.Errorf("1/2 mirror sent %d copies of 400 requests, want 200 ± 50", got)
	}
}

func TestMirrorNeverDelaysOrFailsMain(t *testing.T) {
	main := newEchoBackend(t, "main")
	blocked := make(chan struct{})
	slow := newEchoBackend(t, "slow")
	slow.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-blocked })
	t.Cleanup(func() { close(blocked) })
	r := prefixRoute("m", "/", main.backend(1))
	deadMirror := ir.Backend{Name: "default/dead:80", Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: 1}}}
	r.Filters = []ir.Filter{
		{Mirror: &ir.Mirror{Backend: slow.backend(1), Numerator: 1, Denominator: 1}},
		{Mirror: &ir.Mirror{Backend: deadMirror, Numerator: 1, Denominator: 1}},
	}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{MirrorConcurrency: 2})
	cl := newClient()
	cl.Timeout = 3 * time.Second
	// More requests than mirror slots: the extra copies are dropped and the
	// main requests still succeed while the mirror hangs.
	for i := 0; i < 10; i++ {
		resp, e, _ := do(t, cl, mustReq(t, "GET", p.url(t, "l")+"/", nil))
		if resp.StatusCode != 200 || e.Backend != "main" {
			t.Fatalf("request %d: status %d backend %q", i, resp.StatusCode, e.Backend)
		}
	}
}

func drain(c chan echoed) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// waitCount counts hits until at least min arrived and the channel stays
// quiet briefly, or the deadline passes.
func waitCount(c chan echoed, min int, d time.Duration) int {
	n := 0
	deadline := time.After(d)
	for {
		select {
		case <-c:
			n++
		case <-time.After(300 * time.Millisecond):
			if n >= min {
				return n
			}
		case <-deadline:
			return n
		}
	}
}

func TestRedirectNamesTheServedPort(t *testing.T) {
	// With a port offset, a redirect that keeps the listener's port must
	// name the port clients reach (Gateway port + offset).
	served := fixedPort(t)
	r := ir.Route{Name: "redir", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}},
		Filters: []ir.Filter{{Redirect: &ir.Redirect{Hostname: "other.example.com"}}}}
	l := httpListener("l", catchAll(r))
	l.Port = 80
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{PortOffset: int(served) - 80})
	resp, _, _ := do(t, newClient(), mustReq(t, "GET", p.url(t, "l")+"/x", nil))
	if got, want := resp.Header.Get("Location"), fmt.Sprintf("http://other.example.com:%d/x", served); resp.StatusCode != 302 || got != want {
		t.Errorf("status %d Location %q, want 302 %q", resp.StatusCode, got, want)
	}
}

// TestCORSFilter: a preflight from an allowed origin is answered by the
// gateway (the backend never sees it), one from another origin is answered
// by the gateway too but without CORS headers, and an allowed origin's
// requests get the CORS response headers over the backend's own, on both
// engines (HTTP/1.1 by the wire engine, HTTP/2 by net/http).
func TestCORSFilter(t *testing.T) {
	be := newEchoBackend(t, "a")
	r := prefixRoute("r", "/", be.backend(1))
	r.Filters = []ir.Filter{{CORS: &ir.CORS{
		AllowOrigins: []string{"https://www.foo.com", "https://*.bar.com"}, AllowMethods: []string{"GET", "PUT"},
		AllowHeaders: []string{"x-h1"}, ExposeHeaders: []string{"x-e"}, AllowCredentials: true, MaxAge: 600,
	}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{})
	for name, c := range map[string]*http.Client{"HTTP/1.1": newClient(), "HTTP/2": h2cClient()} {
		t.Run(name, func(t *testing.T) {
			before := be.seenCount()
			req := mustReq(t, "OPTIONS", p.url(t, "l")+"/api", nil)
			req.Header.Set("Origin", "https://a.b.bar.com")
			req.Header.Set("Access-Control-Request-Method", "PUT")
			req.Header.Set("Access-Control-Request-Headers", "x-h1")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := map[string]string{
				"Access-Control-Allow-Origin": "https://a.b.bar.com", "Access-Control-Allow-Methods": "GET, PUT",
				"Access-Control-Allow-Headers": "x-h1", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age": "600", "Access-Control-Expose-Headers": "x-e",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("preflight %s = %q, want %q", k, got, v)
				}
			}
			if resp.StatusCode != 200 || be.seenCount() != before {
				t.Errorf("preflight: status %d, backend saw %d requests; want 200 from the gateway alone", resp.StatusCode, be.seenCount()-before)
			}

			req = mustReq(t, "OPTIONS", p.url(t, "l")+"/api", nil)
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Access-Control-Request-Method", "PUT")
			before = be.seenCount()
			resp, _, _ = do(t, c, req)
			if resp.StatusCode != 200 || be.seenCount() != before || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("preflight from another origin: status %d, backend saw %d, Allow-Origin %q; want the gateway's 200 without CORS headers",
					resp.StatusCode, be.seenCount()-before, resp.Header.Get("Access-Control-Allow-Origin"))
			}

			req = mustReq(t, "GET", p.url(t, "l")+"/api", nil)
			req.Header.Set("Origin", "https://www.foo.com")
			resp, e, _ := do(t, c, req)
			if e.Method != "GET" || resp.Header.Get("Access-Control-Allow-Origin") != "https://www.foo.com" ||
				resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Access-Control-Expose-Headers") != "x-e" {
				t.Errorf("request from an allowed origin: headers %v", resp.Header)
			}
			req = mustReq(t, "GET", p.url(t, "l")+"/api", nil)
			req.Header.Set("Origin", "https://evil.example")
			resp, _, _ = do(t, c, req)
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("request from another origin got Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}

// seenCount is how many requests the backend has answered.
func (e *echoBackend) seenCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

// TestFiltersAlikeOnEveryPath: the one filter run edits the one outbound
// request every forwarding path sends, so the backend sees the same
// request from the HTTP/1.1 engine, net/http's pooled path and its
// Transport (a body of unknown length), route and backend filters in
// order, a rewrite of host and path included.
func TestFiltersAlikeOnEveryPath(t *testing.T) {
	be := newEchoBackend(t, "a")
	b := be.backend(1)
	b.Filters = []ir.Filter{{RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Order", Value: "backend"}}}}}
	r := prefixRoute("r", "/api", b)
	r.Filters = []ir.Filter{
		{RequestHeaders: &ir.HeaderModifier{
			Set:    []ir.Header{{Name: "x-set", Value: "set"}, {Name: "X-Order", Value: "route"}},
			Add:    []ir.Header{{Name: "X-Add", Value: "added"}},
			Remove: []string{"X-REMOVE"},
		}},
		{Rewrite: &ir.Rewrite{Hostname: "internal.svc", Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/v2"}}},
		{RequestHeaders: &ir.HeaderModifier{Add: []ir.Header{{Name: "X-Set", Value: "second"}}}},
	}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{})
	const payload = "payload"
	for _, c := range []struct {
		name   string
		client *http.Client
		body   func() io.Reader
	}{
		{"HTTP/1.1 engine", newClient(), func() io.Reader { return strings.NewReader(payload) }},
		{"HTTP/2 pooled", h2cClient(), func() io.Reader { return strings.NewReader(payload) }},
		{"HTTP/2 Transport", h2cClient(), func() io.Reader { return io.MultiReader(strings.NewReader(payload)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := mustReq(t, "POST", p.url(t, "l")+"/api/users?id=7", c.body())
			req.Host = "public.example.com"
			req.Header.Set("X-Set", "client")
			req.Header.Set("X-Add", "client")
			req.Header.Set("X-Remove", "client")
			resp, e, _ := do(t, c.client, req)
			if resp.StatusCode != http.StatusOK || e.URI != "/v2/users?id=7" || e.Host != "internal.svc" || e.Body != payload {
				t.Errorf("status %d, backend saw %q on host %q with body %q; want /v2/users?id=7 on internal.svc with %q",
					resp.StatusCode, e.URI, e.Host, e.Body, payload)
			}
			h := http.Header(e.Header)
			want := map[string]string{
				"X-Set": "set,second", "X-Add": "client,added", "X-Order": "backend", "X-Remove": "",
				"X-Forwarded-Host": "public.example.com", "X-Forwarded-Proto": "http",
			}
			for k, v := range want {
				if got := strings.Join(h[k], ","); got != v {
					t.Errorf("backend saw %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}
