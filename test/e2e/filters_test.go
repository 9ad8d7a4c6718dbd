package e2e

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// prefixRule is a rule matching PathPrefix prefix with extra YAML (filters,
// backendRefs) indented for a rule body.
func prefixRule(prefix, body string) string {
	return "  - matches:\n    - path:\n        type: PathPrefix\n        value: " + prefix + "\n" + body
}

func TestFilters(t *testing.T) {
	bes := backendsNamed(t, "filters", "main", "mirror", "bf-a", "bf-b")
	mirror := bes[2]
	main := bes[1]
	port := freePort(t)
	rules := prefixRule("/reqhdr", `    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: X-Set
          value: new
        add:
        - name: X-Add
          value: added
        remove:
        - X-Remove
`+to("filters")) +
		prefixRule("/resphdr", `    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set:
        - name: X-Resp-Set
          value: set
        add:
        - name: X-Resp-Add
          value: added
        remove:
        - X-Backend
`+to("filters")) +
		prefixRule("/redir-scheme", `    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        statusCode: 301
`) +
		prefixRule("/redir-host", `    filters:
    - type: RequestRedirect
      requestRedirect:
        hostname: other.test
`) +
		prefixRule("/redir-port", `    filters:
    - type: RequestRedirect
      requestRedirect:
        port: 8443
        statusCode: 302
`) +
		prefixRule("/redir-prefix", `    filters:
    - type: RequestRedirect
      requestRedirect:
        statusCode: 301
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /new
`) +
		prefixRule("/redir-full", `    filters:
    - type: RequestRedirect
      requestRedirect:
        path:
          type: ReplaceFullPath
          replaceFullPath: /full
`) +
		prefixRule("/rewrite", `    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.test
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /backend
`+to("filters")) +
		prefixRule("/strip", `    filters:
    - type: URLRewrite
      urlRewrite:
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /
`+to("filters")) +
		prefixRule("/mirror", `    filters:
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: mirror
          port: 80
`+to("main")) +
		prefixRule("/backend-filter", `    backendRefs:
    - name: bf-a
      port: 80
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier:
          set:
          - name: X-Backend-Filter
            value: bf-a
    - name: bf-b
      port: 80
`)
	startGateway(t, map[string]string{
		"gateway.yaml":  httpGateway(port),
		"backends.yaml": servicesYAML(bes...),
		"routes.yaml":   routeYAML("filters", []string{"filters.test"}, rules),
	})
	c := newClient()
	hostPort := "filters.test:" + strconv.Itoa(port)

	t.Run("RequestHeaderModifier", func(t *testing.T) {
		res := get(t, c, port, "filters.test", "/reqhdr",
			"X-Set", "old", "X-Add", "original", "X-Remove", "gone", "X-Keep", "kept")
		rep := res.reply(t)
		if got := headerValues(rep, "X-Set"); !slices.Equal(got, []string{"new"}) {
			t.Errorf("X-Set = %q, want [new]", got)
		}
		if got := headerValues(rep, "X-Add"); !slices.Equal(got, []string{"original", "added"}) {
			t.Errorf("X-Add = %q, want [original added]", got)
		}
		if got := headerValues(rep, "X-Remove"); got != nil {
			t.Errorf("X-Remove reached the backend: %q", got)
		}
		if got := headerValues(rep, "X-Keep"); !slices.Equal(got, []string{"kept"}) {
			t.Errorf("X-Keep = %q, want [kept]", got)
		}
	})

	t.Run("ResponseHeaderModifier", func(t *testing.T) {
		res := get(t, c, port, "filters.test", "/resphdr")
		if res.status != http.StatusOK {
			t.Fatalf("status %d, want 200", res.status)
		}
		if got := res.header.Values("X-Resp-Set"); !slices.Equal(got, []string{"set"}) {
			t.Errorf("X-Resp-Set = %q, want [set]", got)
		}
		if got := res.header.Values("X-Resp-Add"); !slices.Equal(got, []string{"added"}) {
			t.Errorf("X-Resp-Add = %q, want [added]", got)
		}
		if got := res.header.Values("X-Backend"); got != nil {
			t.Errorf("X-Backend not removed: %q", got)
		}
		if rep := res.reply(t); rep.Backend != "filters" {
			t.Errorf("served by %q", rep.Backend)
		}
	})

	t.Run("RequestRedirect", func(t *testing.T) {
		cases := []struct {
			name, target string
			status       int
			location     string
		}{
			// A scheme without a port takes the scheme's well-known port,
			// which is left out of the Location.
			{"scheme", "/redir-scheme/x?q=1", 301, "https://filters.test/redir-scheme/x?q=1"},
			// No scheme, no port: the listener's port.
			{"hostname", "/redir-host/a", 302, "http://other.test:" + strconv.Itoa(port) + "/redir-host/a"},
			{"port", "/redir-port", 302, "http://filters.test:8443/redir-port"},
			{"prefix replace", "/redir-prefix/a/b", 301, "http://" + hostPort + "/new/a/b"},
			{"prefix replace of the whole path", "/redir-prefix", 301, "http://" + hostPort + "/new"},
			{"full path", "/redir-full/anything", 302, "http://" + hostPort + "/full"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := get(t, c, port, "filters.test", tc.target)
				if res.status != tc.status {
					t.Errorf("status = %d, want %d", res.status, tc.status)
				}
				if got := res.header.Get("Location"); got != tc.location {
					t.Errorf("Location = %q, want %q", got, tc.location)
				}
			})
		}
	})

	t.Run("URLRewrite", func(t *testing.T) {
		cases := []struct{ target, host, path string }{
			{"/rewrite/x/y", "rewritten.test", "/backend/x/y"},
			{"/rewrite", "rewritten.test", "/backend"},
			{"/strip/x", "filters.test", "/x"},
			{"/strip", "filters.test", "/"},
		}
		for _, tc := range cases {
			t.Run(tc.target, func(t *testing.T) {
				rep := get(t, c, port, "filters.test", tc.target).reply(t)
				if rep.Host != tc.host {
					t.Errorf("backend saw Host %q, want %q", rep.Host, tc.host)
				}
				if rep.Path != tc.path {
					t.Errorf("backend saw path %q, want %q", rep.Path, tc.path)
				}
			})
		}
	})

	t.Run("RequestMirror", func(t *testing.T) {
		const n = 5
		mainBefore, mirrorBefore := main.count.Load(), mirror.count.Load()
		for i := 0; i < n; i++ {
			res := get(t, c, port, "filters.test", "/mirror/"+strconv.Itoa(i))
			if res.status != http.StatusOK {
				t.Fatalf("status %d, want 200", res.status)
			}
			if rep := res.reply(t); rep.Backend != "main" {
				t.Fatalf("client got the reply of %q, want main", rep.Backend)
			}
		}
		if got := main.count.Load() - mainBefore; got != n {
			t.Errorf("main backend got %d requests, want %d", got, n)
		}
		// Mirrors are fire-and-forget: wait for the copies, bounded.
		poll.Require(t, 5*time.Second, "mirror backend received every copy", func() bool {
			return mirror.count.Load()-mirrorBefore >= n
		})
		time.Sleep(100 * time.Millisecond)
		if got := mirror.count.Load() - mirrorBefore; got != n {
			t.Errorf("mirror backend got %d requests, want %d", got, n)
		}
		// The copies are the same requests (method, path), in any order.
		copies := map[string]bool{}
		for _, p := range mirror.seen() {
			copies[p] = true
		}
		for i := 0; i < n; i++ {
			if want := "GET /mirror/" + strconv.Itoa(i); !copies[want] {
				t.Errorf("mirror backend never saw %q; it saw %q", want, mirror.seen())
			}
		}
	})

	t.Run("backend filters", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 40; i++ {
			rep := get(t, c, port, "filters.test", "/backend-filter").reply(t)
			seen[rep.Backend]++
			got := headerValues(rep, "X-Backend-Filter")
			switch rep.Backend {
			case "bf-a":
				if !slices.Equal(got, []string{"bf-a"}) {
					t.Fatalf("bf-a saw X-Backend-Filter %q, want [bf-a]", got)
				}
			case "bf-b":
				if got != nil {
					t.Fatalf("bf-b saw X-Backend-Filter %q: a backend's filter ran for another backend", got)
				}
			default:
				t.Fatalf("served by %q", rep.Backend)
			}
		}
		if seen["bf-a"] == 0 || seen["bf-b"] == 0 {
			t.Errorf("40 requests at 1:1 reached %v; want both backends", seen)
		}
	})
}
