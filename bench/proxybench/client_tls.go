package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// tlsWorker makes one new TLS connection per operation: TCP connect, full
// (or, with -resume, resumed) handshake, one HTTP/1.1 GET with
// "Connection: close", the whole body, close.
type tlsWorker struct {
	cfg  *tls.Config
	addr string
	req  []byte
	size int
}

// sourceAddrs spreads the client's connections over several loopback
// source addresses: a run of short connections leaves sockets in
// TIME_WAIT, and one address has only the ephemeral range's ~28,000 ports.
func sourceAddr(i int) net.IP { return net.IPv4(127, 0, 0, byte(2+i%8)) }

func newTLSWorker(o clientOptions) (*tlsWorker, error) {
	pool := x509.NewCertPool()
	for _, f := range strings.Split(o.ca, ",") {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", f)
		}
	}
	// X25519 only (P-256 as fallback): Go's default would offer the hybrid
	// X25519MLKEM768 first, which OpenSSL 3.0 (nginx, HAProxy) does not
	// have, so the Go proxies would do more work per handshake than the
	// others for a reason that is the client's choice.
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	switch o.tlsVer {
	case "1.2":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "1.3":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	default:
		return nil, fmt.Errorf("-tls %q: want 1.2 or 1.3", o.tlsVer)
	}
	if o.resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(o.conns * 4)
	}
	req := fmt.Sprintf("GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: proxybench\r\nConnection: close\r\n\r\n", bodyName(o.size))
	return &tlsWorker{cfg: cfg, addr: o.addr, req: []byte(req), size: o.size}, nil
}

// bodyName is the backend file of a size (writeBodies).
func bodyName(size int) string {
	if size == 64<<10 {
		return "64k"
	}
	return "1k"
}

func (w *tlsWorker) close() {}

func (w *tlsWorker) do(ctx context.Context, id int) (op, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceAddr(id)}}
	nc, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return op{}, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	tc := tls.Client(nc, w.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return op{}, fmt.Errorf("handshake: %w", err)
	}
	if _, err := tc.Write(w.req); err != nil {
		return op{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return op{}, fmt.Errorf("response: %w", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return op{}, fmt.Errorf("body: %w", err)
	}
	// Read after the response so TLS 1.3 tickets, sent after the
	// handshake, have been seen.
	resumed := tc.ConnectionState().DidResume
	if resp.StatusCode != http.StatusOK || n != int64(w.size) {
		return op{badStatus: true}, nil
	}
	return op{ops: 1, bytes: uint64(n), resumed: resumed}, nil
}
