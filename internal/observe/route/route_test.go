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
	l := NewLimiter(2, 3)
	for i := range 5 {
		_, r := l.Limit("svc-a", fmt.Sprint("/r", i))
		want := fmt.Sprint("/r", i)
		if i >= 3 {
			want = Other
		}
		if r != want {
			t.Errorf("route %d = %q, want %q", i, r, want)
		}
	}
	if _, r := l.Limit("svc-a", "/r1"); r != "/r1" {
		t.Errorf("known route replaced: %q", r)
	}
	if k, _ := l.Limit("svc-b", "/"); k != "svc-b" {
		t.Errorf("second key = %q", k)
	}
	if k, _ := l.Limit("svc-c", "/"); k != Other {
		t.Errorf("third key = %q, want %q", k, Other)
	}
	if l.Overflows() != 3 {
		t.Errorf("overflows = %d", l.Overflows())
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
