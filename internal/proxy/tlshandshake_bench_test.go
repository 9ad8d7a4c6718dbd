package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// tlsHandshakeClient makes what one operation of the harness's tls cells
// is (bench/proxybench/client_tls.go): a new TCP connection, a handshake
// offering X25519 first, one GET with "Connection: close", the whole
// answer, close.
type tlsHandshakeClient struct {
	addr string
	cfg  *tls.Config
	req  []byte
}

func newTLSHandshakeClient(tb testing.TB, version uint16, resume bool, certs ...ir.Certificate) *tlsHandshakeClient {
	tb.Helper()
	be := newCannedBackend(tb, 1024)
	if len(certs) == 0 {
		certs = []ir.Certificate{newTestCert(tb, "bench", []string{"bench.example"}, "").ir}
	}
	snap := &ir.Snapshot{Listeners: []ir.Listener{
		httpsListener("tls", certs, catchAll(prefixRoute("default/bench", "/", be.backend()))),
	}}
	p := startProxy(tb, snap, Options{})
	cfg := &tls.Config{
		InsecureSkipVerify: true, ServerName: "bench.example", NextProtos: []string{"http/1.1"},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		MinVersion:       version, MaxVersion: version,
	}
	if resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	}
	return &tlsHandshakeClient{addr: p.Addr("tls").String(), cfg: cfg,
		req: []byte("GET /1k HTTP/1.1\r\nHost: bench.example\r\nConnection: close\r\n\r\n")}
}

// do runs one operation and returns whether the handshake resumed a session.
func (c *tlsHandshakeClient) do(tb testing.TB) bool {
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	tc := tls.Client(nc, c.cfg)
	if _, err := tc.Write(c.req); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || n != 1024 {
		tb.Fatalf("status %d, %d body bytes, %v; want 200 and 1024", resp.StatusCode, n, err)
	}
	return tc.ConnectionState().DidResume
}

// BenchmarkTLSHandshake measures one operation of the tls cells in
// process: the proxy's accept, handshake (ECDSA P-256 certificate, X25519),
// request, relay and close, plus the client's side of the same (its
// handshake, signature check and parse), so ns/op and allocs/op are both
// sides'. Compare builds with it; the proxy's own CPU per handshake comes
// from the harness (docs/performance.md, round 13).
func BenchmarkTLSHandshake(b *testing.B) {
	for _, bc := range []struct {
		name    string
		version uint16
		resume  bool
	}{
		{"tls13-full", tls.VersionTLS13, false},
		{"tls13-resumed", tls.VersionTLS13, true},
		{"tls12-full", tls.VersionTLS12, false},
		{"tls12-resumed", tls.VersionTLS12, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newTLSHandshakeClient(b, bc.version, bc.resume)
			c.do(b) // the backend connection, and a session to resume
			b.ReportAllocs()
			b.ResetTimer()
			resumed := 0
			cpu0 := processCPU(b)
			for b.Loop() {
				if c.do(b) {
					resumed++
				}
			}
			// CPU time, not wall time: on a shared machine wall time
			// counts other processes' turns.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1e3, "cpu-us/op")
			if bc.resume && resumed != b.N {
				b.Fatalf("%d of %d handshakes resumed, want all", resumed, b.N)
			}
		})
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
