package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"

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
	h.sock.h2.ServeConn(bufferedConn(conn, rw.Reader), &http2.ServeConnOpts{
		Context:        r.Context(),
		BaseConfig:     h.sock.srv,
		Handler:        http.HandlerFunc(h.serveProxied),
		UpgradeRequest: r,
		Settings:       settings,
	})
	return true
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
