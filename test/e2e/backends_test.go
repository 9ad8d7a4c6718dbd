package e2e

import (
	"net/http"
	"testing"
	"time"
)

func TestBackends(t *testing.T) {
	bes := backendsNamed(t, "heavy", "light", "ok", "slow")
	heavy, light := bes[0], bes[1]
	port := freePort(t)
	manifests := httpGateway(port) + servicesYAML(bes...) +
		serviceYAML("empty", 0) +
		serviceYAML("dead", deadPort(t)) +
		routeYAML("split", []string{"split.test"}, `  - backendRefs:
    - name: heavy
      port: 80
      weight: 3
    - name: light
      port: 80
      weight: 1
`) +
		routeYAML("half-missing", []string{"missing.test"}, `  - backendRefs:
    - name: ok
      port: 80
    - name: does-not-exist
      port: 80
`) +
		routeYAML("empty", []string{"empty.test"}, catchAll("empty")) +
		routeYAML("dead", []string{"dead.test"}, catchAll("dead")) +
		routeYAML("timeout", []string{"timeout.test"}, `  - timeouts:
      request: 300ms
`+to("slow")) +
		routeYAML("backend-timeout", []string{"backend-timeout.test"}, `  - timeouts:
      request: 20s
      backendRequest: 300ms
`+to("slow"))
	startGateway(t, map[string]string{"all.yaml": manifests})
	c := newClient()

	t.Run("weighted 3:1", func(t *testing.T) {
		const n = 1000
		h0, l0 := heavy.count.Load(), light.count.Load()
		got := map[string]int{}
		for i := 0; i < n; i++ {
			res := get(t, c, port, "split.test", "/")
			if res.status != http.StatusOK {
				t.Fatalf("request %d: status %d, want 200", i, res.status)
			}
			got[res.reply(t).Backend]++
		}
		// With independent random picks the heavy share is binomial(1000,
		// 0.75): mean 750, standard deviation 13.7. ±70 is five standard
		// deviations (a false alarm about once in three million runs),
		// yet a broken split such as 1:1 (500) or 9:1 (900) fails it.
		if got["heavy"]+got["light"] != n || got["heavy"] < 680 || got["heavy"] > 820 {
			t.Errorf("split %v over %d requests; want heavy in [680, 820]", got, n)
		}
		if dh, dl := heavy.count.Load()-h0, light.count.Load()-l0; int(dh) != got["heavy"] || int(dl) != got["light"] {
			t.Errorf("backends counted heavy=%d light=%d, replies said %v", dh, dl, got)
		}
	})

	t.Run("missing Service gets 500 for its share", func(t *testing.T) {
		const n = 200
		codes := map[int]int{}
		for i := 0; i < n; i++ {
			res := get(t, c, port, "missing.test", "/")
			codes[res.status]++
			if res.status == http.StatusOK {
				if b := res.reply(t).Backend; b != "ok" {
					t.Fatalf("200 from %q, want ok", b)
				}
			}
		}
		// Half the weight: binomial(200, 0.5), sd 7.1; ±40 is over 5 sd.
		if codes[200]+codes[500] != n || codes[500] < 60 || codes[500] > 140 {
			t.Errorf("status counts %v over %d requests; want only 200 and 500, 500 in [60, 140]", codes, n)
		}
	})

	t.Run("Service without endpoints gets 503", func(t *testing.T) {
		if res := get(t, c, port, "empty.test", "/"); res.status != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503; body %s", res.status, res.body)
		}
	})

	t.Run("dead endpoint gets 502", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if res := get(t, c, port, "dead.test", "/"); res.status != http.StatusBadGateway {
				t.Errorf("request %d: status %d, want 502; body %s", i, res.status, res.body)
			}
		}
	})

	t.Run("request timeout gets 504", func(t *testing.T) {
		// The backend would wait 20s; the client gives up after 10s, so a
		// gateway that ignores the 300ms timeout fails this test.
		start := time.Now()
		res := get(t, c, port, "timeout.test", "/?delay=20s")
		if res.status != http.StatusGatewayTimeout {
			t.Errorf("status %d after %s, want 504", res.status, time.Since(start))
		}
		// A fast answer on the same route is not affected.
		if res := get(t, c, port, "timeout.test", "/?delay=10ms"); res.status != http.StatusOK {
			t.Errorf("fast request: status %d, want 200", res.status)
		}
	})

	t.Run("backend request timeout gets 504", func(t *testing.T) {
		if res := get(t, c, port, "backend-timeout.test", "/?delay=20s"); res.status != http.StatusGatewayTimeout {
			t.Errorf("status %d, want 504", res.status)
		}
		if res := get(t, c, port, "backend-timeout.test", "/?delay=10ms"); res.status != http.StatusOK {
			t.Errorf("fast request: status %d, want 200", res.status)
		}
	})
}
