package h2client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/false-systems/rauta/internal/h1"
)

// Options bound what a Transport holds and waits for. Zero fields take
// the defaults named.
type Options struct {
	// Dial opens backend connections; nil dials TCP with DialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds a dial (default 10 s). A dial is shared by the
	// requests waiting for a connection to the address, so it does not
	// end with the context of the one that started it.
	DialTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response head's header list size
	// (RFC 9113 6.5.2), advertised as SETTINGS_MAX_HEADER_LIST_SIZE
	// (default 1 MiB).
	MaxResponseHeaderBytes int
	// IdleTimeout closes a connection with no open stream (default 90 s).
	IdleTimeout time.Duration
	// StreamWindow is the receive window of each stream: the most
	// response body bytes a stream buffers (default 256 KiB).
	StreamWindow int32
	// ConnWindow is the connection's receive window (default 1 MiB).
	ConnWindow int32
	// MaxStreamsPerConn bounds the streams open at once on one connection,
	// below the backend's SETTINGS_MAX_CONCURRENT_STREAMS (default 100);
	// more requests open more connections.
	MaxStreamsPerConn int
}

func (o *Options) defaults() {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
		o.Dial = d.DialContext
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = 1 << 20
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 90 * time.Second
	}
	if o.StreamWindow <= 0 {
		o.StreamWindow = 256 << 10
	}
	if o.StreamWindow < initialWindow {
		o.StreamWindow = initialWindow
	}
	if o.ConnWindow < o.StreamWindow {
		o.ConnWindow = max(o.StreamWindow, 1<<20)
	}
	if o.MaxStreamsPerConn <= 0 {
		o.MaxStreamsPerConn = 100
	}
}

// Transport sends requests to h2c backends over pooled connections, each
// shared by up to Options.MaxStreamsPerConn requests at once. It is an
// http.RoundTripper.
type Transport struct {
	o Options

	mu      sync.Mutex
	conns   map[string][]*conn // live connections that take new streams, by address
	dialing map[string]*dialCall

	// bufs holds the request body writers' buffers.
	bufs sync.Pool
}

// dialCall is a dial in progress, which the requests for its address
// wait for.
type dialCall struct {
	done chan struct{}
	err  error
}

// New returns a Transport with o's bounds.
func New(o Options) *Transport {
	o.defaults()
	t := &Transport{o: o, conns: map[string][]*conn{}, dialing: map[string]*dialCall{}}
	t.bufs.New = func() any { b := make([]byte, bodyChunk); return &b }
	return t
}

// errUnprocessed marks a request the backend did not process (refused
// stream, a GOAWAY below its stream, a connection gone before its head
// went out): safe to send again.
var errUnprocessed = errors.New("h2client: request not processed by the backend")

// bodyChunk is the most request body one read takes (a DATA frame's
// default maximum).
const bodyChunk = 16 << 10

// maxAttempts bounds how often an unprocessed request is sent again.
const maxAttempts = 4

// RoundTrip sends req to req.URL.Host and returns the response once its
// head arrived. The response body is the stream: reading it gives the
// backend credit for more, closing it early resets the stream. req.Body
// is always closed, perhaps after RoundTrip returned.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.send(req, nil, false)
}

// RoundTripFields is RoundTrip with the head's fields taken from fields,
// in their order (names in any case), instead of from req.Header, which
// it does not read, and the response head's fields given as a list
// (names lower-case, as HTTP/2 sends them), the response's Header nil: a
// proxy that holds its heads as lists sends and relays them without a
// header map for each. fields is not kept once it returned. Trailers
// still come in the response's Trailer.
func (t *Transport) RoundTripFields(req *http.Request, fields h1.Fields) (*http.Response, h1.Fields, error) {
	resp, err := t.send(req, fields, true)
	if err != nil {
		return nil, nil, err
	}
	return resp, resp.Body.(responseFields).responseFields(), nil
}

// responseFields is what a listed response's Body offers: the stream, or
// an empty body that keeps its head's fields (the response ended with
// its head).
type responseFields interface{ responseFields() h1.Fields }

func (s *stream) responseFields() h1.Fields { return s.fields }

// send is RoundTrip; listed says the fields come from fields.
func (t *Transport) send(req *http.Request, fields h1.Fields, listed bool) (*http.Response, error) {
	h := head{req: req, fields: fields, listed: listed}
	ctx := req.Context()
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	for attempt := 1; ; attempt++ {
		resp, sent, err := t.roundTrip(ctx, &h, body)
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, errUnprocessed) || attempt == maxAttempts || ctx.Err() != nil {
			if body != nil && !sent {
				body.Close()
			}
			return nil, err
		}
		if body != nil && sent {
			// The body writer read from it (and closed it) or may still
			// be: a repeat needs a fresh copy.
			if req.GetBody == nil {
				return nil, err
			}
			if body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// buffered is a request body that can say it is all in memory (the
// proxy's, over internal/h2's): Read will not wait, so RoundTrip sends it
// itself instead of starting a body writer (a gRPC unary call's body has
// usually arrived with its head).
type buffered interface{ Buffered() bool }

// roundTrip makes one attempt. sent reports that body went to a body
// writer, which closes it.
func (t *Transport) roundTrip(ctx context.Context, h *head, body io.ReadCloser) (*http.Response, bool, error) {
	req := h.req
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	cc, err := t.reserve(ctx, req.URL.Host)
	if err != nil {
		return nil, false, err
	}
	s := cc.newStream(ctx, req, body)
	s.listed = h.listed
	if err := cc.writeHead(s, h); err != nil {
		return nil, false, err
	}
	sent := false
	if body != nil {
		sent = true
		if b, ok := body.(buffered); ok && b.Buffered() {
			s.writeBody(body, req.Trailer)
		} else {
			go s.writeBody(body, req.Trailer)
		}
	}
	s.awaitHead()
	if s.headErr != nil {
		return nil, sent, s.headErr
	}
	return s.resp, sent, nil
}

// reserve returns a connection to addr with a stream slot taken for the
// caller, dialing one when none has room. Every connection dialled has
// room for a stream (dial refuses a backend allowing none), so a burst
// that takes a new connection's streams first ends, at worst, in one
// connection per MaxStreamsPerConn requests.
func (t *Transport) reserve(ctx context.Context, addr string) (*conn, error) {
	for {
		t.mu.Lock()
		for _, cc := range t.conns[addr] {
			if cc.tryReserve() {
				t.mu.Unlock()
				return cc, nil
			}
		}
		if d := t.dialing[addr]; d != nil {
			t.mu.Unlock()
			select {
			case <-d.done:
				if d.err != nil {
					return nil, d.err
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		d := &dialCall{done: make(chan struct{})}
		t.dialing[addr] = d
		t.mu.Unlock()
		go t.dialFor(ctx, addr, d)
	}
}

// dialFor dials addr for the requests waiting on d, each of which stops
// waiting when its own context ends; the dial itself is bounded by
// DialTimeout.
func (t *Transport) dialFor(ctx context.Context, addr string, d *dialCall) {
	cc, err := t.dial(ctx, addr)
	t.mu.Lock()
	delete(t.dialing, addr)
	if err == nil {
		t.conns[addr] = append(t.conns[addr], cc)
	}
	d.err = err
	close(d.done)
	t.mu.Unlock()
}

// dial opens a connection, sends the preface and waits for the backend's
// SETTINGS, so that no stream goes out above its
// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 5.1.2).
func (t *Transport) dial(ctx context.Context, addr string) (*conn, error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.o.DialTimeout)
	defer cancel()
	nc, err := t.o.Dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cc := newConn(t, addr, nc)
	if err := cc.start(); err != nil {
		nc.Close()
		return nil, err
	}
	select {
	case <-cc.ready:
	case <-dctx.Done():
		cc.fail(errors.New("no SETTINGS from the backend within the dial timeout"))
	}
	cc.mu.Lock()
	err = cc.err
	zero := cc.maxStreams == 0
	if err == nil && !zero {
		// Closed if no request takes a stream before the idle timeout.
		cc.idle = time.AfterFunc(t.o.IdleTimeout, cc.closeIfIdle)
	}
	cc.mu.Unlock()
	if zero && err == nil {
		err = errors.New("the backend allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)")
		cc.fail(err)
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: err}
	}
	return cc, nil
}

// drop takes cc out of the pool: it takes no new streams.
func (t *Transport) drop(cc *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.conns[cc.addr]
	for i, c := range list {
		if c == cc {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(t.conns, cc.addr)
	} else {
		t.conns[cc.addr] = list
	}
}

// CloseIdleConnections closes the connections with no open stream.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var all []*conn
	for _, list := range t.conns {
		all = append(all, list...)
	}
	t.mu.Unlock()
	for _, cc := range all {
		cc.closeIfIdle()
	}
}
