package router

import (
	"maps"
	"slices"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func mustCORS(t *testing.T, c ir.CORS) *CORS {
	t.Helper()
	out, err := compileCORS(&c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// collect returns the headers a CORS call adds, and whether it allowed the
// origin.
func collect(call func(add func(string, string)) bool) (map[string]string, bool) {
	got := map[string]string{}
	ok := call(func(n, v string) { got[n] = v })
	return got, ok
}

func TestCORSOrigins(t *testing.T) {
	c := mustCORS(t, ir.CORS{AllowOrigins: []string{"https://www.foo.com", "https://*.bar.com", "http://local.test:8080"}})
	for origin, want := range map[string]bool{
		"https://www.foo.com":       true,
		"https://www.foo.com:443":   true, // the scheme's default port
		"https://WWW.FOO.COM":       true,
		"http://www.foo.com":        false, // another scheme
		"https://www.foo.com:8443":  false,
		"https://foo.com":           false,
		"https://www.bar.com":       true,
		"https://xpto.www.bar.com":  true,  // * takes any number of labels
		"https://bar.com":           false, // * takes at least one
		"https://evilbar.com":       false, // the suffix is ".bar.com"
		"https://www.bar.com.evil":  false,
		"http://local.test:8080":    true,
		"http://local.test":         false,
		"https://www.foo.com/path":  false,
		"null":                      false,
		"":                          false,
		"https://user@www.foo.com":  false,
		"https://www.foo.com:99999": false,
	} {
		if got := c.AllowsOrigin(origin); got != want {
			t.Errorf("AllowsOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
	if !mustCORS(t, ir.CORS{AllowOrigins: []string{"*"}}).AllowsOrigin("https://anything.example:12345") {
		t.Error(`"*" did not allow an origin with a port`)
	}
}

func TestCORSPreflight(t *testing.T) {
	c := mustCORS(t, ir.CORS{
		AllowOrigins:     []string{"https://www.foo.com"},
		AllowMethods:     []string{"GET", "OPTIONS", "GET"},
		AllowHeaders:     []string{"x-header-1", "x-header-2"},
		ExposeHeaders:    []string{"x-header-3", "x-header-4"},
		AllowCredentials: true,
		MaxAge:           3600,
	})
	got, ok := collect(func(add func(string, string)) bool {
		return c.Preflight("https://www.foo.com", "GET", "x-header-1, x-header-2", add)
	})
	want := map[string]string{
		"Access-Control-Allow-Origin":      "https://www.foo.com",
		"Vary":                             "Origin",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, OPTIONS",
		"Access-Control-Allow-Headers":     "x-header-1, x-header-2",
		"Access-Control-Expose-Headers":    "x-header-3, x-header-4",
		"Access-Control-Max-Age":           "3600",
	}
	if !ok || !maps.Equal(got, want) {
		t.Fatalf("preflight headers %v (allowed %v), want %v", got, ok, want)
	}
	got, ok = collect(func(add func(string, string)) bool { return c.Preflight("https://foobar.com", "GET", "", add) })
	if ok || len(got) != 0 {
		t.Fatalf("preflight from another origin added %v (allowed %v), want nothing", got, ok)
	}
	// No Access-Control-Request-Headers: no Allow-Headers.
	got, _ = collect(func(add func(string, string)) bool { return c.Preflight("https://www.foo.com", "GET", "", add) })
	if _, has := got["Access-Control-Allow-Headers"]; has {
		t.Errorf("Allow-Headers %q without Access-Control-Request-Headers", got["Access-Control-Allow-Headers"])
	}
}

func TestCORSWildcards(t *testing.T) {
	for _, credentials := range []bool{true, false} {
		c := mustCORS(t, ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"},
			ExposeHeaders: []string{"*", "x-listed"}, AllowCredentials: credentials})
		got, ok := collect(func(add func(string, string)) bool {
			return c.Preflight("https://other.foo.com", "PUT", "x-header-1, x-header-2", add)
		})
		if !ok || got["Access-Control-Allow-Origin"] != "https://other.foo.com" || got["Access-Control-Allow-Methods"] != "PUT" ||
			got["Access-Control-Allow-Headers"] != "x-header-1, x-header-2" || got["Access-Control-Max-Age"] != "5" {
			t.Errorf("credentials %v: wildcard preflight headers %v; want the origin, method and headers echoed, max age 5", credentials, got)
		}
		_, hasCred := got["Access-Control-Allow-Credentials"]
		if hasCred != credentials {
			t.Errorf("credentials %v: Allow-Credentials present %v", credentials, hasCred)
		}
		// With credentials "*" means a header named "*" to a browser, so
		// only the listed names are exposed.
		wantExpose := map[bool]string{true: "x-listed", false: "*"}[credentials]
		if got["Access-Control-Expose-Headers"] != wantExpose {
			t.Errorf("credentials %v: Expose-Headers %q, want %q", credentials, got["Access-Control-Expose-Headers"], wantExpose)
		}
	}
}

func TestCORSActual(t *testing.T) {
	c := mustCORS(t, ir.CORS{AllowOrigins: []string{"https://www.foo.com"}, AllowMethods: []string{"GET"}, ExposeHeaders: []string{"x-e"}})
	got, ok := collect(func(add func(string, string)) bool { return c.Actual("https://www.foo.com", add) })
	names := slices.Sorted(maps.Keys(got))
	if !ok || !slices.Equal(names, []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Vary"}) ||
		got["Access-Control-Allow-Origin"] != "https://www.foo.com" {
		t.Fatalf("actual response headers %v (allowed %v)", got, ok)
	}
	if got, ok := collect(func(add func(string, string)) bool { return c.Actual("https://foobar.com", add) }); ok || len(got) != 0 {
		t.Fatalf("a request from another origin got %v", got)
	}
}

func TestCORSRefusesBadOrigins(t *testing.T) {
	for _, o := range []string{"www.foo.com", "ftp://foo.com", "https://", "https://a*.foo.com", "https://foo.com:0", "https://foo.com:x"} {
		if _, err := compileCORS(&ir.CORS{AllowOrigins: []string{o}}); err == nil {
			t.Errorf("origin %q compiled", o)
		}
	}
}

func TestIsPreflight(t *testing.T) {
	if !IsPreflight("OPTIONS", "https://a.test", "GET") || IsPreflight("OPTIONS", "", "GET") ||
		IsPreflight("OPTIONS", "https://a.test", "") || IsPreflight("GET", "https://a.test", "GET") {
		t.Error("IsPreflight wrong")
	}
}
