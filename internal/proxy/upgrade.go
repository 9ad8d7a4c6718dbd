package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/false-systems/rauta/internal/router"
)

// upgrade forwards a request that asks to switch protocols (WebSocket) and,
// when the backend agrees with 101, splices the client and backend
// connections until either side closes. Request timeouts do not apply to the
// upgraded connection, which is expected to live long.
func (f *forwarder) upgrade(w http.ResponseWriter, r *http.Request, o *outbound, b *router.Backend, addr string, st *filterState) {
	// The answer to the upgrade is bounded by BackendResponseTimeout (no
	// route timeout applies to upgraded connections); the watch stops
	// before the connections are spliced.
	ctx, watch := startBackendWatch(o.ctx, &f.opts, false, false)
	defer watch.stop()
	out := o.httpRequest(ctx, backendScheme(b), addr)
	// Upgrades speak HTTP/1.1 to the backend whatever its appProtocol
	// (over TLS when the backend has it: its Transport is HTTP/1.1 only).
	tr := f.h1
	if b.TLS != nil {
		tr = f.tls.get(b)
	}
	resp, err := tr.RoundTrip(out)
	watch.pause()
	if err != nil {
		dl, _ := ctx.Deadline()
		st.up.failed(r.Context().Err() != nil, err, dl)
		f.writeUpstreamError(w, r, ctx, b, err)
		return
	}
	st.up.status = resp.StatusCode // for the access log; an upgrade is no traced attempt
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The backend declined: relay its answer as a plain response.
		defer resp.Body.Close()
		copyResponseHeader(w, resp, st)
		w.WriteHeader(resp.StatusCode)
		if err := f.relayReader(w, watchedBody{resp.Body, watch}); err != nil && r.Context().Err() == nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	backConn, ok := resp.Body.(io.ReadWriteCloser)
	want := out.Header.Get("Upgrade")
	if !ok || !strings.EqualFold(resp.Header.Get("Upgrade"), want) {
		resp.Body.Close()
		writeError(w, http.StatusBadGateway, "backend switched to an unexpected protocol")
		return
	}
	defer backConn.Close()

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

	// Splice until either direction ends, then close both connections,
	// which ends the other direction too.
	done := make(chan struct{}, 2)
	var toClient atomic.Int64
	go func() {
		// Bytes the client sent after its request are in brw.Reader.
		_, _ = io.Copy(backConn, io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), clientConn))
		done <- struct{}{}
	}()
	go func() {
		n, _ := io.Copy(clientConn, backConn)
		toClient.Store(n)
		done <- struct{}{}
	}()
	<-done
	clientConn.Close()
	backConn.Close()
	<-done
	if rec, ok := w.(*recorder); ok {
		rec.bytes += toClient.Load()
	}
}

func (f *forwarder) track(c net.Conn, add bool) {
	f.upMu.Lock()
	defer f.upMu.Unlock()
	if add {
		f.upgraded[c] = struct{}{}
	} else {
		delete(f.upgraded, c)
	}
}
