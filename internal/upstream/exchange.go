package upstream

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/internal/h1"
)

// Exchange is one request sent to a backend over the pool and the final
// response head it got: every client protocol's forwarding path runs its
// backend exchanges through one, so each wait is bounded, and a client
// that goes away interrupts it, in this one place.
//
// The caller fills the request fields and bounds, calls Do, relays the
// response body from Conn (after Relay), and ends with Finish. An
// Exchange is reused request after request (its buffers stay), on one
// goroutine; only Interrupt may run on another.
type Exchange struct {
	// Head is the request head as it goes on the wire, with any body
	// bytes already at hand after it, so they leave in one write.
	Head []byte
	// Body streams the rest of a request body of known length to the
	// backend connection it is given, nil when Head holds all of it. An
	// error it returns that is not the connection's is the client's
	// (Do returns it as a ClientError).
	Body io.WriterTo
	// HeadRequest: the request is HEAD, whose response has no body
	// whatever its head says.
	HeadRequest bool
	// Replayable: the request has no body and is safe to send again, so a
	// reused connection that fails before any response byte (a backend
	// may close an idle one at any moment) is retried once on another.
	Replayable bool

	// ResponseTimeout bounds the wait for the response head once the
	// request is sent, IdleTimeout each wait for the backend to take more
	// of the request (and, after Relay, to send more of the response);
	// Deadline, when set (a route's timeout), bounds every wait and
	// replaces ResponseTimeout.
	ResponseTimeout, IdleTimeout time.Duration
	Deadline                     time.Time
	// MaxResponseHead bounds the backend's response head (an error, 502
	// to the client, past it); <= 0 means h1.DefaultMaxResponseHead.
	MaxResponseHead int
	// Check, when set, runs while a read from the backend waits, at most
	// a second apart (h1.Socket.SetReadCheck): an error from it ends the
	// wait and the exchange with that error. The HTTP/1.1 engine's
	// returns ErrClientGone (wrapped) when its client hung up.
	Check func() error

	// Scratch holds the response head, which Resp's strings view; keep it
	// across exchanges, or set it nil for one whose strings must outlive
	// the next exchange.
	Scratch []byte
	// Resp is the final response head once Do returned nil; 1xx interim
	// responses are read and dropped.
	Resp h1.ResponseHead
	// Conn is the connection the response body is read from, between a
	// Do that returned nil and Finish.
	Conn *Conn
	// Early: the backend answered before it took the whole request body
	// (a 413 or 401 to a large upload). Whatever is left of the client's
	// body is not read; the connection serves no other exchange.
	Early bool

	// silent: the exchange failed before anything was read on a fresh
	// connection, or could not connect.
	silent bool
	// backendErr is the error of the last write of Body to the backend.
	backendErr error

	// cur is the connection Interrupt ends; interrupted is set once it ran.
	cur         atomic.Pointer[Conn]
	interrupted atomic.Bool
}

// The errors Do returns besides a connection's and a parser's own.
var (
	// ErrResponseTimeout: no final response head within ResponseTimeout
	// or by the Deadline (a gateway answers 504).
	ErrResponseTimeout = fmt.Errorf("backend sent no response in time: %w", os.ErrDeadlineExceeded)
	// ErrSendTimeout: the backend took no more of the request for
	// IdleTimeout, or the Deadline passed while it was being sent (504).
	ErrSendTimeout = fmt.Errorf("backend took no more of the request in time: %w", os.ErrDeadlineExceeded)
	// ErrInterrupted: Interrupt ended the exchange (the client's request
	// ended).
	ErrInterrupted = errors.New("backend exchange interrupted")
	// ErrClientGone: a Check found that the client closed its connection
	// while its backend was waited on.
	ErrClientGone = errors.New("client closed the connection")
)

// ClientError wraps a failure on the client's side of an exchange: its
// request body could not be read, or it went away.
type ClientError struct{ Err error }

func (e ClientError) Error() string { return e.Err.Error() }
func (e ClientError) Unwrap() error { return e.Err }

// Do sends the request to addr over a pooled connection, or a new one,
// and reads the final response head into Resp. now is the caller's recent
// clock reading. Errors besides the connection's and the parser's own:
// ErrResponseTimeout and ErrSendTimeout (both os.ErrDeadlineExceeded),
// ErrInterrupted, Check's, and a ClientError for the request body. A
// reused connection that fails before any response byte is retried once
// on another when the request is Replayable, as net/http's Transport
// does. On error no connection is held.
func (x *Exchange) Do(p *Pool, addr string, now time.Time) error {
	x.Conn, x.Early, x.silent = nil, false, false
	for attempt := 0; ; attempt++ {
		uc, reused, err := p.Get(addr, x.Deadline, now)
		if err != nil {
			x.silent = true // nothing was sent
			return err
		}
		err = x.send(uc, now)
		if err == nil {
			x.Conn = uc
			return nil
		}
		uc.Sock.Close()
		x.silent = !reused && uc.W == 0
		if reused && attempt == 0 && uc.W == 0 && x.Replayable && x.retryable(err) {
			continue
		}
		return err
	}
}

// Silent reports an exchange that failed before reading anything on a
// fresh connection, or could not connect: the endpoint, not the request,
// is then the likely problem (a reused connection may just have been
// closed while idle).
func (x *Exchange) Silent() bool { return x.silent }

// retryable says a failure on a reused connection may be the backend
// closing it while idle, not a timeout, an interrupt or a client gone.
func (x *Exchange) retryable(err error) bool {
	return !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, ErrInterrupted) &&
		!errors.Is(err, ErrClientGone) && !errors.As(err, new(ClientError))
}

// send writes the request on uc and reads the final response head.
func (x *Exchange) send(uc *Conn, now time.Time) error {
	uc.Reset()
	uc.boundExchange(x.ResponseTimeout, x.IdleTimeout, x.Deadline, now, x.Check)
	x.use(uc)
	if x.Body == nil {
		// The whole request in one write, and no read before its answer
		// can have come (h1.Socket.WriteRead).
		sent, err := uc.SendFill(x.Head, x.MaxResponseHead)
		if !sent {
			return x.failed(err, ErrSendTimeout)
		}
		if err != nil {
			return x.failed(err, ErrResponseTimeout)
		}
	} else if err := x.sendWithBody(uc); err != nil || x.Early {
		return err
	}
	if err := uc.ReadFinalHead(x.HeadRequest, x.MaxResponseHead, &x.Scratch, &x.Resp); err != nil {
		return x.failed(err, ErrResponseTimeout)
	}
	return nil
}

// sendWithBody writes the head and streams Body after it. A backend that
// stopped taking the body and answered sets Early, with Resp read.
func (x *Exchange) sendWithBody(uc *Conn) error {
	if _, err := uc.Sock.Write(x.Head); err != nil {
		return x.failed(err, ErrSendTimeout)
	}
	x.backendErr = nil
	_, err := x.Body.WriteTo(sendWriter{x})
	if err == nil {
		return nil
	}
	if x.backendErr == nil {
		var ce ClientError
		if errors.As(err, &ce) {
			return err
		}
		return ClientError{err}
	}
	err = x.failed(x.backendErr, ErrSendTimeout)
	// A backend that stopped taking the body may have answered (413, 401)
	// and closed; not one that stalled.
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrInterrupted) || !uc.earlyAnswer(x.HeadRequest, x.MaxResponseHead, &x.Scratch, &x.Resp) {
		return err
	}
	x.Early = true
	return nil
}

// failed names a wait that ended the exchange: an interrupt, or a timeout
// (the socket's deadline error becomes timeout).
func (x *Exchange) failed(err, timeout error) error {
	switch {
	case x.interrupted.Load():
		return ErrInterrupted
	case errors.Is(err, os.ErrDeadlineExceeded):
		return timeout
	}
	return err
}

// sendWriter is the backend connection as Body sees it: it notes the
// connection's own errors, so any other is known to be the client's.
type sendWriter struct{ x *Exchange }

func (w sendWriter) Write(p []byte) (int, error) {
	n, err := w.x.cur.Load().Sock.Write(p)
	if err != nil {
		w.x.backendErr = err
	}
	return n, err
}

// use makes uc the connection Interrupt ends, and ends it at once if
// Interrupt ran already. Either this or Interrupt sees the other's store,
// so uc cannot miss it.
func (x *Exchange) use(uc *Conn) {
	x.cur.Store(uc)
	if x.interrupted.Load() {
		uc.interrupt()
	}
}

// Interrupt ends the exchange's wait in progress and every later one,
// from any goroutine: the request ended (its client went away, its
// context's deadline passed). Do then returns ErrInterrupted, and the
// relay's reads fail; Finish closes the connection.
func (x *Exchange) Interrupt() {
	x.interrupted.Store(true)
	if uc := x.cur.Load(); uc != nil {
		uc.interrupt()
	}
}

// Interrupted reports that Interrupt ran.
func (x *Exchange) Interrupted() bool { return x.interrupted.Load() }

// Relay bounds the waits for the response body on Conn: each by
// IdleTimeout, all of them by the Deadline. Check keeps running.
func (x *Exchange) Relay() { x.Conn.boundRelay(x.IdleTimeout, x.Deadline) }

// Finish ends the exchange after its response body was relayed: Conn
// goes back to the pool when the body was read completely (complete) and
// the connection can serve again (the backend keeps it open, no bytes
// past the response, not interrupted); otherwise it is closed. A caller
// whose Interrupt may still run (a context.AfterFunc) stops that first,
// or passes complete false.
func (x *Exchange) Finish(p *Pool, complete bool, now time.Time) {
	uc := x.Conn
	x.Conn = nil
	x.cur.Store(nil)
	if complete && !x.Early && !x.Resp.CloseAfter && uc.R == uc.W && !x.interrupted.Load() {
		p.Put(uc, now)
		return
	}
	uc.Sock.Close()
}

// Reset readies an Exchange that Interrupt may have run on for the next
// request; the caller knows Interrupt is not running (its watch was
// stopped before it started). Head, Scratch, Resp and Check stay.
func (x *Exchange) Reset() {
	x.cur.Store(nil)
	x.interrupted.Store(false)
	x.Body, x.backendErr = nil, nil
	x.Conn, x.Early, x.silent = nil, false, false
}
