package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The demo manifests use listener ports 8080/8443 and backends on
// 9101/9102; the test serves them with a port offset and its own backends.
const (
	exampleHTTPPort  = 8080
	exampleHTTPSPort = 8443
)

// copyExamples copies examples/*.yaml into a temp folder, pointing the
// EndpointSlice ports 9101 and 9102 at the given backends.
func copyExamples(t *testing.T, v1, v2 int) (dir string, certPEM []byte) {
	t.Helper()
	src, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil || len(src) == 0 {
		t.Fatalf("no examples/*.yaml found (%v)", err)
	}
	dir = t.TempDir()
	for _, p := range src {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if filepath.Base(p) == "backends.yaml" {
			for from, to := range map[string]int{"port: 9101": v1, "port: 9102": v2} {
				if !strings.Contains(s, from) {
					t.Fatalf("examples/backends.yaml has no %q to rewrite", from)
				}
				s = strings.ReplaceAll(s, from, "port: "+strconv.Itoa(to))
			}
		}
		if m := regexp.MustCompile(`tls\.crt: (\S+)`).FindStringSubmatch(s); m != nil {
			if certPEM, err = base64.StdEncoding.DecodeString(m[1]); err != nil {
				t.Fatalf("%s: tls.crt: %v", p, err)
			}
		}
		writeFile(t, filepath.Join(dir, filepath.Base(p)), s)
	}
	if certPEM == nil {
		t.Fatalf("no tls.crt in examples")
	}
	return dir, certPEM
}

// portOffset finds an offset that puts both demo ports on free loopback
// ports, so the demo runs unchanged next to anything else on the machine.
func portOffset(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		offset := freePort(t) - exampleHTTPPort
		if offset+exampleHTTPSPort > 65535 {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(exampleHTTPSPort+offset))
		if err != nil {
			continue
		}
		ln.Close()
		return offset
	}
	t.Fatalf("no free pair of ports for the demo")
	return 0
}

func TestExamples(t *testing.T) {
	v1, v2 := startBackend(t, "echo-v1"), startBackend(t, "echo-v2")
	dir, certPEM := copyExamples(t, v1.port, v2.port)
	offset := portOffset(t)
	startGatewayDir(t, dir, "-port-offset", strconv.Itoa(offset))
	port, securePort := exampleHTTPPort+offset, exampleHTTPSPort+offset
	c := newClient()

	t.Run("routes", func(t *testing.T) {
		cases := []struct {
			name, host, target string
			headers            []string
			backend, path      string
		}{
			{"default rule", "app.example.com", "/hello", nil, "echo-v1", "/hello"},
			{"canary header", "app.example.com", "/hello", []string{"X-Canary", "true"}, "echo-v2", "/hello"},
			{"prefix rewrite", "app.example.com", "/v2/items", nil, "echo-v2", "/items"},
			{"host routing", "api.example.com", "/x", nil, "echo-v2", "/x"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := get(t, c, port, tc.host, tc.target, tc.headers...)
				if res.status != http.StatusOK {
					t.Fatalf("status %d; body %s", res.status, res.body)
				}
				if rep := res.reply(t); rep.Backend != tc.backend || rep.Path != tc.path {
					t.Errorf("served by %s with path %s, want %s with %s", rep.Backend, rep.Path, tc.backend, tc.path)
				}
			})
		}
		if got := get(t, c, port, "app.example.com", "/").header.Get("X-Served-By"); got != "rauta" {
			t.Errorf("X-Served-By = %q, want rauta", got)
		}
		if res := get(t, c, port, "unknown.example.org", "/"); res.status != http.StatusNotFound {
			t.Errorf("unknown host: status %d, want 404", res.status)
		}
	})

	t.Run("redirect", func(t *testing.T) {
		res := get(t, c, port, "app.example.com", "/old/page?x=1")
		// The Location names the port the gateway serves on (listener port
		// plus offset), the one a client can follow.
		want := "http://app.example.com:" + strconv.Itoa(port) + "/new/page?x=1"
		if res.status != http.StatusMovedPermanently || res.header.Get("Location") != want {
			t.Errorf("%d Location %q, want 301 %q", res.status, res.header.Get("Location"), want)
		}
	})

	t.Run("weighted split 80:20", func(t *testing.T) {
		const n = 400
		got := map[string]int{}
		for i := 0; i < n; i++ {
			got[get(t, c, port, "split.example.com", "/").reply(t).Backend]++
		}
		// binomial(400, 0.8): mean 320, sd 8; ±40 is five sd.
		if got["echo-v1"]+got["echo-v2"] != n || got["echo-v1"] < 280 || got["echo-v1"] > 360 {
			t.Errorf("split %v; want echo-v1 in [280, 360] of %d", got, n)
		}
	})

	t.Run("HTTPS with the demo certificate", func(t *testing.T) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(certPEM) {
			t.Fatalf("demo tls.crt is not PEM")
		}
		hc := &http.Client{
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "app.example.com"}},
			Timeout:   10 * time.Second,
		}
		defer hc.CloseIdleConnections()
		req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(securePort)+"/secure", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "app.example.com"
		res := do(t, hc, req)
		if res.status != http.StatusOK || res.reply(t).Backend != "echo-v1" {
			t.Errorf("status %d body %s, want 200 from echo-v1", res.status, res.body)
		}
	})
}
