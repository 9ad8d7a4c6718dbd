package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/internal/router"
)

// upgrade forwards a request that asks to switch protocols (WebSocket) and,
// when the backend agrees with 101, relays bytes between the client and
// backend connections (tunnel.go) until both sides closed or no byte moved
// for Options.UpgradeIdleTimeout. Request timeouts do not apply to the
// upgraded connection, which is expected to live long.
func (f *forwarder) upgrade(w http.ResponseWriter, r *http.Request, o *outbound, b *router.Backend, addr string, st *filterState) {
	// The answer to the upgrade is bounded by BackendResponseTimeout (no
	// route timeout applies to upgraded connections); the watch stops
	// before the connections are spliced.
	ctx, watch := startBackendWatch(o.ctx, &f.opts, time.Time{}, false)
	defer watch.stop()
	out := o.httpRequest(ctx, backendScheme(b), addr)
	backConn, br, resp, unwatch, err := f.upgradeExchange(ctx, b, addr, out)
	watch.pause()
	if err != nil {
		st.up.failed(r.Context().Err() != nil, err, time.Time{})
		f.writeUpstreamError(w, r, ctx, b, err, time.Time{})
		return
	}
	defer backConn.Close()
	st.up.status = resp.StatusCode // for the access log; an upgrade is no traced attempt
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The backend declined: relay its answer as a plain response,
		// each wait bounded by the watch.
		defer unwatch()
		defer resp.Body.Close()
		copyResponseHeader(w, resp, st)
		w.WriteHeader(resp.StatusCode)
		if err := f.relayReader(w, watchedBody{resp.Body, watch}); err != nil && r.Context().Err() == nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	if !unwatch() {
		// The watch fired (or the client went away) as the backend
		// answered: the connection's deadline has passed.
		f.writeUpstreamError(w, r, ctx, b, context.Cause(ctx), time.Time{})
		return
	}
	want := out.Header.Get("Upgrade")
	if !strings.EqualFold(resp.Header.Get("Upgrade"), want) {
		writeError(w, http.StatusBadGateway, "backend switched to an unexpected protocol")
		return
	}

	clientConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot switch protocols on this connection")
		return
	}
	defer clientConn.Close()
	f.track(clientConn, true)
	defer f.track(clientConn, false)

	removeHopByHop(resp.Header)
	for _, m := range st.respMods {
		m.Apply(resp.Header)
	}
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", want)
	if rec, ok := w.(*recorder); ok {
		rec.status = http.StatusSwitchingProtocols
	}
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return
	}
	if err := resp.Header.Write(brw); err != nil {
		return
	}
	if _, err := brw.WriteString("\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}

	// Bytes either side sent right after its head (a first WebSocket
	// frame) are in the readers that parsed the heads; the tunnel sends
	// them first. Neither reader is used after.
	clientPending, _ := brw.Peek(brw.Reader.Buffered())
	backendPending, _ := br.Peek(br.Buffered())
	var received, sent atomic.Uint64
	tunnel(tunnelEnd{conn: clientConn, pending: clientPending}, tunnelEnd{conn: backConn, pending: backendPending},
		f.opts.UpgradeIdleTimeout, &f.bufs, &received, &sent)
	if rec, ok := w.(*recorder); ok {
		rec.bytes += int64(sent.Load())
	}
}

// maxInformational bounds the 1xx responses other than 101 an upgrade's
// backend may send before its answer, as net/http's Transport does.
const maxInformational = 5

// upgradeExchange sends an upgrade request to the backend on a connection
// of its own, never pooled, since it becomes the tunnel, and reads the
// answer: the connection, the reader holding what the backend sent after
// the response head, and the response (its body read through that
// reader). Upgrades speak HTTP/1.1 whatever the backend's appProtocol,
// over TLS when the backend has it (BackendTLSPolicy: the router's
// tls.Config, ALPN http/1.1 only). Until unwatch is called, ctx's end
// ends the connection's waits; unwatch reports false if it already did.
//
// Why not http.Transport: the connection it returns after a 101 is a body
// wrapper, with no socket to read directly and no way to see which bytes
// its reader already took; the tunnel needs both.
func (f *forwarder) upgradeExchange(ctx context.Context, b *router.Backend, addr string, out *http.Request) (nc net.Conn, br *bufio.Reader, resp *http.Response, unwatch func() bool, err error) {
	raw, err := f.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) }) //nolint:errcheck // the waits report it
	nc = raw
	defer func() { // the results are nil on an error: raw and stop are not
		if err != nil {
			stop()
			raw.Close()
		}
	}()
	if b.TLS != nil {
		cfg := b.TLS.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(raw, cfg)
		nc = tc
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if err := out.Write(nc); err != nil {
		return nil, nil, nil, nil, err
	}
	// The response head is bounded as the Transport bounds it; what
	// follows it is not.
	lr := &io.LimitedReader{R: nc, N: int64(f.opts.MaxResponseHeaderBytes)}
	br = bufio.NewReaderSize(lr, 4<<10)
	for range maxInformational + 1 {
		resp, err := http.ReadResponse(br, out)
		if err != nil {
			if lr.N <= 0 {
				err = errResponseHeadTooLarge
			}
			return nil, nil, nil, nil, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode >= 200 {
			lr.N = math.MaxInt64
			return nc, br, resp, stop, nil
		}
	}
	return nil, nil, nil, nil, errors.New("too many informational responses")
}

var errResponseHeadTooLarge = errors.New("backend response head too large")

func (f *forwarder) track(c net.Conn, add bool) {
	f.upMu.Lock()
	defer f.upMu.Unlock()
	if add {
		f.upgraded[c] = struct{}{}
	} else {
		delete(f.upgraded, c)
	}
}
