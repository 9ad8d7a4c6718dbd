package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// maxH2CUpgradeBody bounds the request body read before switching a
// connection to h2c (the body must be read to be replayed as stream 1).
// Upgrade requests with larger bodies are served over HTTP/1.1, which RFC
// 7540 section 3.2 allows.
const maxH2CUpgradeBody = 64 << 10

// isH2CUpgrade reports whether r asks to switch to h2c (RFC 7540 3.2).
func isH2CUpgrade(r *http.Request) bool {
	return r.ProtoMajor == 1 &&
		httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") &&
		httpguts.HeaderValuesContainsToken(r.Header["Connection"], "HTTP2-Settings") &&
		len(r.Header["Http2-Settings"]) == 1
}

// serveH2CUpgrade switches the connection to HTTP/2 and serves r as its
// stream 1. It returns false, having written nothing, when the upgrade
// cannot be done; the caller then serves r over HTTP/1.1.
func (h *handler) serveH2CUpgrade(w http.ResponseWriter, r *http.Request) bool {
	settings, err := base64.RawURLEncoding.DecodeString(r.Header.Get("Http2-Settings"))
	if err != nil {
		return false
	}
	if r.ContentLength > maxH2CUpgradeBody {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxH2CUpgradeBody+1))
	if err != nil || len(body) > maxH2CUpgradeBody {
		if len(body) > 0 {
			// Part of the body is consumed: replay it for HTTP/1.1.
			r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		}
		return false
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		return false
	}
	if _, err := rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
		conn.Close()
		return true
	}
	if err := rw.Flush(); err != nil {
		conn.Close()
		return true
	}
	// The upgraded request continues as an HTTP/2 request: its upgrade
	// headers are spent.
	for _, k := range []string{"Upgrade", "Connection", "Http2-Settings"} {
		delete(r.Header, k)
	}
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	h.sock.upgraded.serve(bufferedConn(conn, rw.Reader), h.sock.srv, http.HandlerFunc(h.serveProxied), r, settings)
	return true
}

// h2cUpgrades serves connections upgraded with Upgrade: h2c. net/http serves
// h2 and prior-knowledge h2c itself but has no Upgrade support, so these
// connections go to x/net's HTTP/2 server, whose ServeConn is the only
// implementation that can answer the upgrade request as stream 1.
type h2cUpgrades struct {
	//nolint:staticcheck // x/net's server is deprecated for net/http, which cannot serve h2c upgrades
	server *http2.Server
	// signal exists only to trigger x/net's graceful shutdown (GOAWAY) of
	// upgraded connections: ConfigureServer hooks it to signal.Shutdown.
	signal *http.Server
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func (u *h2cUpgrades) init(base *http.Server) error {
	u.server = &http2.Server{} //nolint:staticcheck // see h2cUpgrades
	u.signal = &http.Server{}
	u.conns = map[net.Conn]struct{}{}
	//nolint:staticcheck // see h2cUpgrades; it only registers the shutdown hook on signal
	if err := http2.ConfigureServer(u.signal, u.server); err != nil {
		return fmt.Errorf("configure h2c upgrades: %w", err)
	}
	return nil
}

// serve runs one upgraded connection: r (the upgrade request) becomes
// stream 1, settings are the client's HTTP2-Settings, base supplies limits
// and timeouts.
func (u *h2cUpgrades) serve(c net.Conn, base *http.Server, h http.Handler, r *http.Request, settings []byte) {
	u.mu.Lock()
	u.conns[c] = struct{}{}
	u.wg.Add(1)
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		u.wg.Done()
	}()
	//nolint:staticcheck // see h2cUpgrades
	u.server.ServeConn(c, &http2.ServeConnOpts{
		Context:        r.Context(),
		BaseConfig:     base,
		Handler:        h,
		UpgradeRequest: r,
		Settings:       settings,
	})
}

// len returns the number of upgraded connections.
func (u *h2cUpgrades) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

// shutdown sends GOAWAY on every upgraded connection, waits for them to
// finish their streams until ctx ends, then closes what is left.
func (u *h2cUpgrades) shutdown(ctx context.Context) {
	_ = u.signal.Shutdown(ctx) // runs the GOAWAY hook; it serves no connection itself
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	u.mu.Lock()
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	<-done
}

type readCloser struct {
	io.Reader
	io.Closer
}

// bufferedConn keeps the bytes the HTTP/1.1 reader already buffered (the
// client may send its preface right after the upgrade request).
func bufferedConn(c net.Conn, br *bufio.Reader) net.Conn {
	if br.Buffered() == 0 {
		return c
	}
	return &prefixConn{Conn: c, r: io.MultiReader(io.LimitReader(br, int64(br.Buffered())), c)}
}

type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }
