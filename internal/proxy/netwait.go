package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// The timeouts per wait on the net/http paths (pooled.go, forward.go),
// with the deadlines of the client connection under net/http set through
// http.ResponseController. A server that cannot set them (internal/h2's
// streams) answers ErrNotSupported, and the client side stays unbounded
// there.

// lazyDeadline is waitBound.arm's rule for a deadline set on the client
// connection under net/http: keep the one in force while it is ahead and
// at most an eighth of the wait (or a second) earlier than wanted.
type lazyDeadline struct {
	d     deadliner // nil: the server cannot set deadlines
	armed time.Time
}

// deadliner is what http.ResponseController looks for. Looked up once per
// request: the controller's own lookup allocates an error per call when
// there is none (internal/h2's streams).
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

func findDeadliner(w http.ResponseWriter) deadliner {
	d, _ := underWriter[deadliner](w)
	return d
}

func (l *lazyDeadline) arm(now, dl time.Time, write bool) {
	if l.d == nil || (l.armed.After(now) && !l.armed.After(dl) && dl.Sub(l.armed) < min(time.Second, dl.Sub(now)/8)) {
		return
	}
	var err error
	if write {
		err = l.d.SetWriteDeadline(dl)
	} else {
		err = l.d.SetReadDeadline(dl)
	}
	if err == nil {
		l.armed = dl
	}
}

// clientBody reads a request body under net/http, each wait for more of
// it bounded by per (ClientBodyTimeout) and all of them by until (a
// route's deadline) with the client connection's read deadline; after a
// 100 Continue too, which net/http sends at the first read. It also keeps
// the backend watch quiet while the client is the one being waited on.
type clientBody struct {
	body     io.ReadCloser
	per      time.Duration
	until    time.Time
	dl       lazyDeadline
	watch    *backendWatch // nil on the pooled path
	timedOut bool          // a wait passed per or until
	// failed: a read error other than a timeout (a malformed chunked
	// body, a client that hung up): the request, not the backend, failed.
	failed bool
	closed bool // Close was called (by the Transport)
	ended  bool

	// The Transport may read the body on its own goroutine even after
	// the handler returned, when net/http may be serving the connection's
	// next request: retire, under mu, stops deadlines being set then.
	mu      sync.Mutex
	retired bool
}

func (b *clientBody) reset(body io.ReadCloser, w http.ResponseWriter, per time.Duration, until time.Time, watch *backendWatch) {
	*b = clientBody{body: body, per: per, until: until, watch: watch, dl: lazyDeadline{d: findDeadliner(w)}}
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.ended || b.retired {
		b.mu.Unlock()
		return 0, io.EOF
	}
	now := time.Now()
	dl := now.Add(b.per)
	if !b.until.IsZero() && b.until.Before(dl) {
		dl = b.until
	}
	b.dl.arm(now, dl, false)
	b.mu.Unlock()
	b.watch.fromBody((*backendWatch).pause)
	n, err := b.body.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch err {
	case nil:
		b.watch.fromBody((*backendWatch).idle)
	case io.EOF:
		b.end()
		b.watch.fromBody((*backendWatch).awaitHead)
	default:
		// The deadline stays: net/http reads on to discard the rest of
		// the body before it closes, and must not wait for it.
		b.timedOut = errors.Is(err, os.ErrDeadlineExceeded)
		// A read the Transport's Close ended (the backend reset the
		// stream) is not the client's failure.
		b.failed = !b.timedOut && !b.closed
		b.ended = true
	}
	return n, err
}

// retire ends the body's use of the connection's deadlines: the handler
// is returning.
func (b *clientBody) retire() {
	b.mu.Lock()
	b.retired = true
	b.mu.Unlock()
}

// failedByTimeout reports a body whose read timed out.
func (b *clientBody) failedByTimeout() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timedOut
}

// failedByClient reports a body whose read failed other than by a
// timeout.
func (b *clientBody) failedByClient() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// Buffered passes on the client's body's Buffered (internal/h2: the
// whole body arrived), which lets internal/h2client send it without a
// goroutine of its own.
func (b *clientBody) Buffered() bool {
	bb, ok := b.body.(interface{ Buffered() bool })
	return ok && bb.Buffered()
}

func (b *clientBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.body.Close()
}

// end clears the read deadline once the body is read: net/http then reads
// on in the background to notice a hang-up, which a deadline left behind
// would fake.
func (b *clientBody) end() {
	b.ended = true
	if !b.dl.armed.IsZero() && !b.retired {
		_ = b.dl.d.SetReadDeadline(time.Time{})
		b.dl.armed = time.Time{}
	}
}

// bodyTimeoutStatus is the answer to a request whose body stalled: 504
// when the route's deadline cut it, 408 otherwise.
func bodyTimeoutStatus(until time.Time) (int, string) {
	if !until.IsZero() && !time.Now().Before(until) {
		return http.StatusGatewayTimeout, "request timed out"
	}
	return http.StatusRequestTimeout, "request body timed out"
}

// writeBodyTimeout answers a request whose body stalled and closes its
// HTTP/1.1 connection: the rest of the body will not be read.
func writeBodyTimeout(w http.ResponseWriter, r *http.Request, until time.Time) {
	code, msg := bodyTimeoutStatus(until)
	refuse(w, r, code, msg)
}

// clientSend bounds each wait for the client to take more of a response
// (ClientSendTimeout) with the client connection's write deadline, re-set
// before writes as it ages.
type clientSend struct {
	w   http.ResponseWriter
	per time.Duration
	dl  lazyDeadline
}

func (s *clientSend) reset(w http.ResponseWriter, per time.Duration) {
	*s = clientSend{w: w, per: per, dl: lazyDeadline{d: findDeadliner(w)}}
}

func (s *clientSend) arm() {
	now := time.Now()
	s.dl.arm(now, now.Add(s.per), true)
}

func (s *clientSend) Write(p []byte) (int, error) {
	s.arm()
	return s.w.Write(p)
}

// flush sends what net/http buffers, under the write deadline.
func (s *clientSend) flush() error {
	s.arm()
	err := http.NewResponseController(s.w).Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// errBackendTimeout: a backend took longer than BackendResponseTimeout to
// start its response, or than BackendIdleTimeout to take or send more.
var errBackendTimeout = errors.New("backend timed out")

// backendWatch bounds the waits on a backend reached through an
// http.Transport, which has no timeout per wait: one timer, re-armed as
// the exchange moves on, cancels the request's context when it fires.
type backendWatch struct {
	// relaying is set once the response head is in: from then on the
	// relay alone re-arms the timer, and the request body's reader
	// (on the Transport's goroutine, possibly still running) no longer.
	mu       sync.Mutex
	relaying bool

	t        *time.Timer
	cancel   context.CancelCauseFunc
	head     time.Duration // 0: the request's deadline bounds the head instead
	idleWait time.Duration
	// end fires at the request's deadline, if it has one: its cause is
	// context.DeadlineExceeded, the phases' errBackendTimeout.
	end *time.Timer
}

// startBackendWatch makes ctx end when a wait on the backend passes its
// bound, or at deadline (zero: none); it starts on the request being sent
// (sendingBody: the body is being sent). Stop it with stop. The deadline
// is a timer of the watch's, not a context.WithTimeout under it: one
// context per forward, not two (eight allocations less per gRPC call
// with a grpc-timeout).
func startBackendWatch(ctx context.Context, o *Options, deadline time.Time, sendingBody bool) (context.Context, *backendWatch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &backendWatch{cancel: cancel, idleWait: o.BackendIdleTimeout}
	// One function for both timers: which fired is read from the clock
	// then, not decided per timer with a closure each.
	fire := func() {
		if deadlinePassed(deadline) {
			cancel(context.DeadlineExceeded)
		} else {
			cancel(errBackendTimeout)
		}
	}
	if deadline.IsZero() {
		w.head = o.BackendResponseTimeout
	} else {
		w.end = time.AfterFunc(time.Until(deadline), fire)
	}
	w.t = time.AfterFunc(time.Hour, fire)
	if sendingBody {
		w.idle()
	} else {
		w.awaitHead()
	}
	return ctx, w
}

// startRelay hands the timer to the response relay.
func (w *backendWatch) startRelay() {
	w.mu.Lock()
	w.relaying = true
	w.mu.Unlock()
}

// fromBody runs op for the request body's reader, unless the relay owns
// the timer.
func (w *backendWatch) fromBody(op func(*backendWatch)) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.relaying {
		op(w)
	}
}

// pause stops the timer while the client, not the backend, is waited on.
func (w *backendWatch) pause() {
	if w != nil {
		w.t.Stop()
	}
}

// idle bounds the next wait on the backend by BackendIdleTimeout.
func (w *backendWatch) idle() {
	if w != nil {
		w.t.Reset(w.idleWait)
	}
}

// awaitHead bounds the wait for the response head.
func (w *backendWatch) awaitHead() {
	if w == nil {
		return
	}
	if w.head > 0 {
		w.t.Reset(w.head)
	} else {
		w.t.Stop()
	}
}

func (w *backendWatch) stop() {
	w.t.Stop()
	if w.end != nil {
		w.end.Stop()
	}
	w.cancel(nil)
}

// watchedBody reads a backend's response body, each wait bounded by the
// watch.
type watchedBody struct {
	io.Reader
	w *backendWatch
}

func (b watchedBody) Read(p []byte) (int, error) {
	b.w.idle()
	n, err := b.Reader.Read(p)
	b.w.pause()
	return n, err
}
