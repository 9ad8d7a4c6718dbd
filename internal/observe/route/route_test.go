package route

import (
	"fmt"
	"testing"
)

func TestTemplate(t *testing.T) {
	cases := map[string]string{
		"/":                        "/",
		"/healthz":                 "/healthz",
		"/users/123":               "/users/:num",
		"/users/123/orders?page=2": "/users/:num/orders",
		"/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301":      "/items/:uuid",
		"/blobs/sha256:9a0c0305e82c33019a0c0305e82c3301aa": "/blobs/:id",
		"/pods/web-7d9f8c6b5-x2k4q":                        "/pods/:id",
		"/static/app.js#frag":                              "/static/app.js",
		"/a/b/c/d/e/f":                                     "/a/b/c/d/*",
		"http://example.com/x/1?y":                         "/x/:num",
		"http://example.com":                               "/",
		"*":                                                "*",
		"example.com:443":                                  Other,
		"/files/my%20doc":                                  "/files/:id",
		"/api/v1/namespaces":                               "/api/v1/namespaces",
	}
	for in, want := range cases {
		if got := Template(in); got != want {
			t.Errorf("Template(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2, 3, 0)
	for i := range 5 {
		_, r := l.Limit("svc-a", fmt.Sprint("/r", i), 1)
		want := fmt.Sprint("/r", i)
		if i >= 3 {
			want = Other
		}
		if r != want {
			t.Errorf("route %d = %q, want %q", i, r, want)
		}
	}
	if _, r := l.Limit("svc-a", "/r1", 1); r != "/r1" {
		t.Errorf("known route replaced: %q", r)
	}
	if k, _ := l.Limit("svc-b", "/", 1); k != "svc-b" {
		t.Errorf("second key = %q", k)
	}
	if k, _ := l.Limit("svc-c", "/", 1); k != Other {
		t.Errorf("third key = %q, want %q", k, Other)
	}
	if l.Overflows() != 3 {
		t.Errorf("overflows = %d", l.Overflows())
	}
}

// TestLimiterEvictsIdleValues (issue 16 point 7): a scanner's one-off
// paths filled the route budget for ever and pushed every later real route
// into _OTHER. Idle values now make room; values in use never do.
func TestLimiterEvictsIdleValues(t *testing.T) {
	const sec = uint64(1e9)
	l := NewLimiter(3, 4, 60*sec)
	var evicted []string
	l.OnEvict = func(k, v string) { evicted = append(evicted, k+" "+v) }
	l.Limit("web", "/api", 0)
	for i := range 10 { // a scan at t=1s
		l.Limit("web", fmt.Sprint("/scan", i), sec)
	}
	// /api stays in use.
	for ts := uint64(10); ts <= 100; ts += 10 {
		if _, r := l.Limit("web", "/api", ts*sec); r != "/api" {
			t.Fatalf("route in use replaced at %ds: %q", ts, r)
		}
	}
	// Right after the scan, a new route waits its turn...
	if _, r := l.Limit("web", "/early", 30*sec); r != Other {
		t.Fatalf("new route while the scan is fresh = %q, want %q (no eviction before the idle age)", r, Other)
	}
	// ...and once the scan's paths are idle for the age, new routes are
	// labelled, the scan's paths evicted oldest first.
	for i, r := range []string{"/orders", "/users", "/cart"} {
		if _, got := l.Limit("web", r, 120*sec); got != r {
			t.Fatalf("route %d %q labelled %q after the scan went idle", i, r, got)
		}
	}
	if _, r := l.Limit("web", "/api", 121*sec); r != "/api" {
		t.Fatalf("/api evicted: %q", r)
	}
	if len(evicted) != 3 || evicted[0] != "web /scan0" {
		t.Fatalf("evicted %v, want the three oldest scan paths", evicted)
	}
	// Services: phantom keys idle for the age make room too.
	l.Limit("10.0.0.9:11211", "_OTHER", sec)
	l.Limit("10.0.0.9:6379", "_OTHER", sec)
	if k, _ := l.Limit("shop", "/", 2*sec); k != Other {
		t.Fatalf("fourth service while the others are fresh = %q", k)
	}
	if k, _ := l.Limit("shop", "/", 200*sec); k != "shop" {
		t.Fatalf("service after the phantoms went idle = %q", k)
	}
	if l.Evictions() != 4 {
		t.Fatalf("evictions %d, want 4", l.Evictions())
	}
	// A known route (from configuration) is labelled even when the budget
	// is full of fresh values.
	if _, r := l.LimitKnown("web", "/checkout", 200*sec); r != "/checkout" {
		t.Fatalf("known route = %q", r)
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/", "/a/1", "http://x/y", "*", "", "/%%", "//////////"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Template(s)
		if out == "" {
			t.Fatalf("empty template for %q", s)
		}
		if len(out) > len(s)+16 && out != Other {
			t.Fatalf("template %q longer than input %q", out, s)
		}
	})
}

func TestMatchKnownRoutes(t *testing.T) {
	routes := []string{"/api", "/api/users", "/static/"}
	for target, want := range map[string]string{
		"/api":            "/api",
		"/api?x=1":        "/api",
		"/api/orders/7":   "/api",
		"/api/users/42":   "/api/users",
		"/apis":           "",
		"/static/app.js":  "/static/",
		"/healthz":        "",
		"/api/usersearch": "/api",
	} {
		got, ok := Match(routes, target)
		if got != want || ok != (want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", target, got, ok, want)
		}
	}
}
