package echoadvanced

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	confecho "sigs.k8s.io/gateway-api/conformance/utils/echo"

	"github.com/false-systems/rauta/internal/freeport"
)

// freePorts returns n ports free a moment ago, outside the ephemeral range
// (internal/freeport).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	p, err := freeport.Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startServer serves the config made from n fresh ports and returns the ports. A port free a
// moment ago can be taken by another package's test before Serve binds it (the server listens on
// every address), so a bind that finds its port in use is retried with new ports.
func startServer(t *testing.T, n int, config func(p []int) ServerConfig) []int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := freePorts(t, n)
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, config(p), func() { close(ready) }) }()
		select {
		case <-ready:
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			})
			return p
		case err := <-done:
			cancel()
			if errors.Is(err, syscall.EADDRINUSE) && attempt < 5 {
				t.Logf("attempt %d: %v; retrying with new ports", attempt, err)
				continue
			}
			t.Fatalf("serve: %v", err)
		}
	}
}

// The client's output, read by the conformance suite's own parser, gives the status, the
// server's pod name, the request headers the server saw and the response headers.
func TestClientOutputParsesWithTheConformanceParser(t *testing.T) {
	p := startServer(t, 4, func(p []int) ServerConfig {
		return ServerConfig{HTTPPorts: []int{p[0], p[1]}, TLSPorts: []int{p[1]}, GRPCPorts: []int{p[2]}, TCPPorts: []int{p[3]}, Hostname: "echo-v1-abc", Version: "v1"}
	})
	ctx := context.Background()

	cfg, err := ParseClientArgs([]string{fmt.Sprintf("http://127.0.0.1:%d/some/path?x=1", p[0]), "--method=POST", "-H", "X-Test:one", "-H", "Host:echo-v2"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(ctx, cfg, &out); err != nil {
		t.Fatal(err)
	}
	r := confecho.ParseResponse(out.String())
	if r.Code != "200" || r.Hostname != "echo-v1-abc" || r.Method != "POST" || r.URL != "/some/path?x=1" || r.Host != "echo-v2" || r.Version != "v1" || r.Protocol != "HTTP/1.1" {
		t.Fatalf("parsed %+v from\n%s", r, out.String())
	}
	if got := r.RequestHeaders.Get("X-Test"); got != "one" {
		t.Errorf("request header X-Test %q, want one (headers %v)", got, r.RequestHeaders)
	}
	if got := r.ResponseHeaders.Get("Content-Type"); got != "text/plain" {
		t.Errorf("response header Content-Type %q (headers %v)", got, r.ResponseHeaders)
	}

	t.Run("count gives one section per response", func(t *testing.T) {
		cfg, err := ParseClientArgs([]string{fmt.Sprintf("http://127.0.0.1:%d/", p[0]), "--count=5"})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := Run(ctx, cfg, &out); err != nil {
			t.Fatal(err)
		}
		var n int
		for s := range strings.SplitSeq(out.String(), "\n\n") {
			if r := confecho.ParseResponse(strings.TrimSpace(s)); r.Code == "200" && r.Hostname == "echo-v1-abc" {
				n++
			}
		}
		if n != 5 {
			t.Fatalf("%d parsed responses, want 5:\n%s", n, out.String())
		}
	})

	t.Run("the grpc port speaks HTTP/2 with prior knowledge", func(t *testing.T) {
		cfg, err := ParseClientArgs([]string{fmt.Sprintf("http://127.0.0.1:%d/", p[2]), "--http2"})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := Run(ctx, cfg, &out); err != nil {
			t.Fatal(err)
		}
		if r := confecho.ParseResponse(out.String()); r.Protocol != "HTTP/2.0" || r.Port != fmt.Sprint(p[2]) {
			t.Fatalf("parsed %+v", r)
		}
	})

	t.Run("the TLS port", func(t *testing.T) {
		cfg, err := ParseClientArgs([]string{fmt.Sprintf("https://127.0.0.1:%d/", p[1]), "--insecure-skip-verify", "--http2"})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := Run(ctx, cfg, &out); err != nil {
			t.Fatal(err)
		}
		if r := confecho.ParseResponse(out.String()); r.Code != "200" || r.Alpn != "h2" || r.Protocol != "HTTP/2.0" {
			t.Fatalf("parsed %+v", r)
		}
	})

	t.Run("TCP echo", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p[3]), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		var got []byte
		for !bytes.HasSuffix(got, []byte("ping\n")) {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("read %q: %v", got, err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Contains(got, []byte("Hostname=echo-v1-abc\n")) {
			t.Fatalf("got %q", got)
		}
	})
}

// A redirect is reported, not followed: the suite checks its status.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_, _ = c.Write([]byte("HTTP/1.1 302 Found\r\nLocation: http://example.org:8083/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	}()
	var out bytes.Buffer
	if err := Run(context.Background(), ClientConfig{URL: "http://" + l.Addr().String() + "/port"}, &out); err != nil {
		t.Fatal(err)
	}
	r := confecho.ParseResponse(out.String())
	if r.Code != "302" || r.ResponseHeaders.Get("Location") != "http://example.org:8083/" {
		t.Fatalf("parsed %+v", r)
	}
}

func TestParseServerArgs(t *testing.T) {
	cfg, err := ParseServerArgs([]string{"--tcp=9090", "--port=8080", "--grpc=7070", "--port=8443", "--tls=8443", "--crt=/cert.crt", "--key=/cert.key"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.HTTPPorts, []int{8080, 8443}) || !slices.Equal(cfg.TLSPorts, []int{8443}) || !slices.Equal(cfg.GRPCPorts, []int{7070}) || !slices.Equal(cfg.TCPPorts, []int{9090}) || cfg.Cert != "/cert.crt" {
		t.Fatalf("%+v", cfg)
	}
	def, err := ParseServerArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(def.HTTPPorts, []int{8080}) || !slices.Equal(def.GRPCPorts, []int{7070}) || !slices.Equal(def.TCPPorts, []int{9090}) {
		t.Fatalf("defaults %+v", def)
	}
	for _, bad := range [][]string{{"--tls=1234"}, {"--port=0"}, {"--bogus"}, {"extra"}, {"--port=7070"}} {
		if _, err := ParseServerArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseClientArgs(t *testing.T) {
	// As conformance/utils/echo builds them: URL first, flags after.
	cfg, err := ParseClientArgs([]string{"http://echo/path", "--method=GET", "-H", "a:b", "--header", "c:d", "--count=3"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "http://echo/path" || cfg.Method != "GET" || !slices.Equal(cfg.Headers, []string{"a:b", "c:d"}) || cfg.Count != 3 {
		t.Fatalf("%+v", cfg)
	}
	for _, bad := range [][]string{nil, {"a", "b"}, {"http://x", "--count=-1"}, {"http://x", "-H"}} {
		if _, err := ParseClientArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
