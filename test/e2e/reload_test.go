package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// reloadWait bounds how long a file change may take to be served.
const reloadWait = 5 * time.Second

// reloadRoutes is the routes file of TestReload: /old always, /new when
// withNew, and every response of load.test tagged X-Gen: gen.
func reloadRoutes(withNew bool, gen int) string {
	rules := prefixRule("/old", to("old"))
	if withNew {
		rules += prefixRule("/new", to("new"))
	}
	return routeYAML("reload", []string{"reload.test"}, rules) +
		routeYAML("load", []string{"load.test"}, `  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set:
        - name: X-Gen
          value: "`+strconv.Itoa(gen)+`"
`+to("old"))
}

// lineOf is the 1-based line of the first occurrence of needle in s.
func lineOf(t *testing.T, s, needle string) int {
	t.Helper()
	i := strings.Index(s, needle)
	if i < 0 {
		t.Fatalf("%q not in manifest", needle)
	}
	return strings.Count(s[:i], "\n") + 1
}

func TestReload(t *testing.T) {
	bes := backendsNamed(t, "old", "new")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  httpGateway(port),
		"backends.yaml": servicesYAML(bes...),
		"routes.yaml":   reloadRoutes(false, 0),
	})
	routes := filepath.Join(g.dir, "routes.yaml")
	c := newClient()
	backendOf := func(host, target string) (int, string) {
		res := get(t, c, port, host, target)
		if res.status != http.StatusOK {
			return res.status, ""
		}
		return res.status, res.reply(t).Backend
	}

	t.Run("an edit is served", func(t *testing.T) {
		if status, _ := backendOf("reload.test", "/new"); status != http.StatusNotFound {
			t.Fatalf("/new before the edit: status %d, want 404", status)
		}
		writeFile(t, routes, reloadRoutes(true, 0))
		poll.Require(t, reloadWait, "/new served by backend new", func() bool {
			_, b := backendOf("reload.test", "/new")
			return b == "new"
		})
		if _, b := backendOf("reload.test", "/old"); b != "old" {
			t.Errorf("/old served by %q after the edit, want old", b)
		}
	})

	t.Run("a new file is served and its removal too", func(t *testing.T) {
		extra := filepath.Join(g.dir, "extra.yaml")
		writeFile(t, extra, routeYAML("extra", []string{"extra.test"}, catchAll("new")))
		poll.Require(t, reloadWait, "extra.test served by backend new", func() bool {
			_, b := backendOf("extra.test", "/")
			return b == "new"
		})
		if err := os.Remove(extra); err != nil {
			t.Fatal(err)
		}
		poll.Require(t, reloadWait, "extra.test gone (404)", func() bool {
			status, _ := backendOf("extra.test", "/")
			return status == http.StatusNotFound
		})
	})

	good := reloadRoutes(true, 0)
	badYAML := good + "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: [unclosed\n"
	unknownField := strings.Replace(good, "    backendRefs:\n    - name: new", "    backendRefz:\n    - name: new", 1)
	badRegex := strings.Replace(good, "type: PathPrefix\n        value: /new", "type: RegularExpression\n        value: /new/(unclosed", 1)
	for _, tc := range []struct {
		name    string
		content string
		line    int // the line the log must name; 0: any line
	}{
		{"bad YAML", badYAML, 0},
		{"unknown field", unknownField, lineOf(t, unknownField, "backendRefz")},
		{"invalid regex", badRegex, lineOf(t, badRegex, "/new/(unclosed")},
	} {
		t.Run("invalid edit keeps serving: "+tc.name, func(t *testing.T) {
			failures := g.reloads("failure")
			logBefore := len(g.stderr.String())
			writeFile(t, routes, tc.content)
			// Restore the good file even when an assertion stops the test.
			defer writeFile(t, routes, good)
			poll.Require(t, reloadWait, "rauta_config_reloads_total{result=failure} grows", func() bool {
				return g.reloads("failure") > failures
			})
			for _, target := range []string{"/old", "/new"} {
				if _, b := backendOf("reload.test", target); b != strings.TrimPrefix(target, "/") {
					t.Errorf("%s served by %q after the invalid edit; the last good config must keep serving", target, b)
				}
			}
			logged := g.stderr.String()[logBefore:]
			want := routes + ":"
			if tc.line > 0 {
				want += strconv.Itoa(tc.line) + ":"
			}
			if !strings.Contains(logged, want) {
				t.Errorf("no log line names %q; logged:\n%s", want, logged)
			}
			g.alive(t)
		})
	}

	t.Run("reload under load loses no request", func(t *testing.T) {
		const (
			workers  = 8
			total    = 1500
			rewrites = 20
		)
		failures, successes := g.reloads("failure"), g.reloads("success")
		var next, done atomic.Int64
		var mu sync.Mutex
		var problems []string
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wc := newClient()
				defer wc.CloseIdleConnections()
				for next.Add(1) <= total {
					err := loadRequest(wc, port)
					done.Add(1)
					if err != nil {
						mu.Lock()
						problems = append(problems, err.Error())
						mu.Unlock()
					}
				}
			}()
		}
		// Spread the rewrites over the run: rewrite k waits until k/21 of
		// the requests are done (bounded, in case the workers stall).
		deadline := time.Now().Add(60 * time.Second)
		for k := 1; k <= rewrites; k++ {
			for done.Load() < int64(k*total/(rewrites+1)) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			writeFile(t, routes, reloadRoutes(true, k))
		}
		wg.Wait()
		if len(problems) > 0 {
			t.Errorf("%d of %d requests failed during reloads; first: %s", len(problems), total, problems[0])
		}
		poll.Require(t, reloadWait, "the last rewrite (X-Gen: 20) is served", func() bool {
			return get(t, c, port, "load.test", "/").header.Get("X-Gen") == strconv.Itoa(rewrites)
		})
		if f := g.reloads("failure"); f != failures {
			t.Errorf("reload failures grew from %v to %v", failures, f)
		}
		if s := g.reloads("success"); s <= successes {
			t.Errorf("reload successes did not grow (%v)", s)
		}
	})

	t.Run("idle keep-alive connection survives a reload", func(t *testing.T) {
		var dials atomic.Int32
		kc := countingClient(&dials)
		defer kc.CloseIdleConnections()
		if res := get(t, kc, port, "load.test", "/"); res.status != http.StatusOK {
			t.Fatalf("first request: status %d", res.status)
		}
		writeFile(t, routes, reloadRoutes(true, 100))
		poll.Require(t, reloadWait, "X-Gen: 100 served", func() bool {
			return get(t, c, port, "load.test", "/").header.Get("X-Gen") == "100"
		})
		res := get(t, kc, port, "load.test", "/")
		if res.status != http.StatusOK || res.header.Get("X-Gen") != "100" {
			t.Errorf("request on the old connection: status %d, X-Gen %q; want 200 with the new config", res.status, res.header.Get("X-Gen"))
		}
		if d := dials.Load(); d != 1 {
			t.Errorf("client dialed %d times; the idle connection did not survive the reload", d)
		}
	})
}

// loadRequest is one request of the reload-under-load test.
func loadRequest(c *http.Client, port int) error {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/", nil)
	if err != nil {
		return err
	}
	req.Host = "load.test"
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf [512]byte
	for {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "old" {
		return fmt.Errorf("status %d from %q", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
	return nil
}

func TestReloadCertificate(t *testing.T) {
	be := startBackend(t, "tls")
	ca := newCA(t)
	port := freePort(t)
	cert1, key1 := ca.issue(t, 1001, "cert.test")
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", listenerSpec{name: "https", port: port, protocol: "HTTPS", hostname: "cert.test", certs: []string{"cert"}}),
		"secret.yaml":   secretYAML("cert", cert1, key1),
		"backends.yaml": servicesYAML(be),
		"routes.yaml":   routeYAML("tls", nil, catchAll("tls")),
	})
	serial := func() int64 {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(port),
			&tls.Config{ServerName: "cert.test", RootCAs: ca.pool})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1001 {
		t.Fatalf("serves certificate serial %d, want 1001", s)
	}
	cert2, key2 := ca.issue(t, 2002, "cert.test")
	writeFile(t, filepath.Join(g.dir, "secret.yaml"), secretYAML("cert", cert2, key2))
	poll.Require(t, reloadWait, "the new certificate (serial 2002) is served", func() bool { return serial() == 2002 })
}
