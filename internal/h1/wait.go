package h1

import (
	"errors"
	"os"
	"time"
)

// Timeouts per wait (nginx's client_body_timeout, send_timeout,
// proxy_read_timeout and proxy_send_timeout): a socket's reads or writes
// may each wait at most so long for the peer, however long the whole body
// takes. A deadline costs timer work, so it is set only when a read or
// write is about to wait (the non-blocking try found nothing to do), and
// then only when the one in force is stale: a busy connection whose reads
// never wait never touches its timer.

// waitBound bounds how long one direction of a sockIO may wait.
type waitBound struct {
	// per bounds each wait; 0 leaves the socket's deadline as set
	// directly (the idle and head deadlines of a client connection).
	per time.Duration
	// until, when set, is a deadline no wait goes past (a route timeout).
	until time.Time
	// check, when set, runs every so often while a read waits (at most a
	// second apart, at least four times per wait); an error from it ends
	// the wait. It notices a client that went away while its backend is
	// slow (internal/proxy's h1conn.clientGone; SetReadCheck).
	check func() error
	// armed is the deadline in force as set through the sockIO, zero if
	// none or unknown.
	armed time.Time
	// waitEnd is when the wait in progress must end, zero before one
	// starts; waitN is how much of a write was written when it started.
	waitEnd time.Time
	waitN   int
}

// bound sets the bound of each later wait; until may be zero.
func (b *waitBound) bound(per time.Duration, until time.Time) {
	if per <= 0 {
		per = time.Nanosecond // a deadline already passed: the wait fails at once
	}
	b.per, b.until = per, until
}

// off stops bounding waits; the deadline in force stays until replaced.
func (b *waitBound) off() { b.per, b.until, b.check = 0, time.Time{}, nil }

// BoundReads bounds each later read's wait for the peer by per, and every
// wait by until when it is set (a route's deadline); per <= 0 makes a wait
// fail at once. Waits are bounded only once a non-blocking try found
// nothing, so a busy socket never touches its timer.
func (s *Socket) BoundReads(per time.Duration, until time.Time) { s.rb.bound(per, until) }

// BoundWrites is BoundReads for writes: each wait for room in the socket.
func (s *Socket) BoundWrites(per time.Duration, until time.Time) { s.wb.bound(per, until) }

// UnboundReads stops bounding reads and drops the read check; the deadline
// in force stays until replaced (SetReadDeadline).
func (s *Socket) UnboundReads() { s.rb.off() }

// UnboundWrites stops bounding writes; the deadline in force stays until
// replaced.
func (s *Socket) UnboundWrites() { s.wb.off() }

// ReadsBounded reports whether reads are bounded per wait (BoundReads).
func (s *Socket) ReadsBounded() bool { return s.rb.per > 0 }

// SetReadCheck sets the check a bounded read runs while it waits (at most
// a second apart, at least four times per wait), nil for none; an error
// from it ends the wait with that error. A backend connection's reads run
// one that notices its client went away.
func (s *Socket) SetReadCheck(check func() error) { s.rb.check = check }

// end is when a wait starting at now must end.
func (b *waitBound) end(now time.Time) time.Time {
	e := now.Add(b.per)
	if !b.until.IsZero() && b.until.Before(e) {
		e = b.until
	}
	return e
}

// arm makes the deadline dl, unless the one in force is still ahead and at
// most an eighth of the wait (or a second) earlier: it then fires early,
// and the waits re-arm and go on (boundedRead, boundedWrite).
func (b *waitBound) arm(now, dl time.Time, set func(time.Time) error) error {
	if b.armed.After(now) && !b.armed.After(dl) && dl.Sub(b.armed) < min(time.Second, dl.Sub(now)/8) {
		return nil
	}
	if err := set(dl); err != nil {
		return err
	}
	b.armed = dl
	return nil
}

// aLongTimeAgo is a deadline that has passed: setting it wakes a blocked
// read or write.
var aLongTimeAgo = time.Unix(1, 0)

// checkEvery is the longest time between two runs of a waitBound's check.
const checkEvery = time.Second

// SetReadDeadline sets the read deadline and remembers it.
func (s *Socket) SetReadDeadline(t time.Time) error {
	s.rb.armed = t
	return s.setReadDeadline(t)
}

// SetWriteDeadline sets the write deadline and remembers it.
func (s *Socket) SetWriteDeadline(t time.Time) error {
	s.wb.armed = t
	return s.setWriteDeadline(t)
}

// SetDeadline sets both deadlines and remembers them.
func (s *Socket) SetDeadline(t time.Time) error {
	s.rb.armed, s.wb.armed = t, t
	return s.Conn.SetDeadline(t)
}

// Interrupt ends the read or write in progress, and every later one, from
// any goroutine: a request that ended (internal/proxy's pooled.go). Waits re-arming their
// deadline afterwards see the flag and interrupt again.
func (s *Socket) Interrupt() {
	s.interrupted.Store(true)
	_ = s.Conn.SetDeadline(aLongTimeAgo) // fails only on a closed connection, which has nothing to wake
}

func (s *Socket) setReadDeadline(t time.Time) error {
	if err := s.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	if s.interrupted.Load() {
		return s.Conn.SetDeadline(aLongTimeAgo)
	}
	return nil
}

func (s *Socket) setWriteDeadline(t time.Time) error {
	if err := s.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	if s.interrupted.Load() {
		return s.Conn.SetDeadline(aLongTimeAgo)
	}
	return nil
}

// staleDeadline reports a deadline error that a stale deadline caused (one
// armed for an earlier wait, passed since), not this wait or an interrupt.
func (s *Socket) staleDeadline(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && !s.interrupted.Load()
}

// boundedRead is Read under s.rb, each call into the netpoller running fn
// (boundedRawRead, or WriteRead's rawWriteRead). The deadline is armed
// inside the raw read, between the try that found nothing and the wait
// (boundedRawRead): a readiness event that came between two separate
// calls into the netpoller would be lost, since each call starts by
// resetting it.
func (s *Socket) boundedRead(p []byte, fn func(fd uintptr) bool) (int, error) {
	s.rb.waitEnd = time.Time{}
	for {
		var n int
		var err error
		if s.rc == nil {
			now := time.Now()
			s.rb.begin(now)
			if err := s.rb.arm(now, s.rb.next(now), s.setReadDeadline); err != nil {
				return 0, err
			}
			n, err = s.Conn.Read(p)
		} else {
			n, err = s.read(p, fn)
		}
		if !s.staleDeadline(err) {
			return n, err
		}
		now := time.Now()
		switch {
		case s.rb.waitEnd.IsZero():
			// A deadline left from an earlier wait: this one starts now.
			s.rb.begin(now)
		case !now.Before(s.rb.waitEnd):
			return n, err
		case s.rb.check != nil:
			if cerr := s.rb.check(); cerr != nil {
				return 0, cerr
			}
		}
		if err := s.rb.arm(now, s.rb.next(now), s.setReadDeadline); err != nil {
			return 0, err
		}
	}
}

// boundedRawRead is rawRead that arms the deadline before the first wait.
func (s *Socket) boundedRawRead(fd uintptr) bool {
	if s.rawRead(fd) {
		return true
	}
	s.armReadWait()
	return false
}

// armReadWait arms the read deadline for the wait about to start, unless
// one is in progress; called inside the raw read, before it asks the
// netpoller to wait.
func (s *Socket) armReadWait() {
	if s.rb.waitEnd.IsZero() {
		now := time.Now()
		s.rb.begin(now)
		_ = s.rb.arm(now, s.rb.next(now), s.setReadDeadline) // fails only when closed: the wait fails too
	}
}

// begin starts a wait at now.
func (b *waitBound) begin(now time.Time) { b.waitEnd = b.end(now) }

// next is the deadline of the wait in progress: its end, or sooner when
// there is a check to run.
func (b *waitBound) next(now time.Time) time.Time {
	if b.check != nil {
		if c := now.Add(min(checkEvery, b.waitEnd.Sub(now)/4)); c.Before(b.waitEnd) {
			return c
		}
	}
	return b.waitEnd
}

// boundedWrite is Write under s.wb: each time the socket is full, the
// wait for room is bounded (armed inside the raw write, as boundedRead
// does).
func (s *Socket) boundedWrite(p []byte) (int, error) {
	s.wb.waitEnd, s.wb.waitN = time.Time{}, -1
	if s.rc == nil {
		now := time.Now()
		s.wb.begin(now)
		if err := s.wb.arm(now, s.wb.waitEnd, s.setWriteDeadline); err != nil {
			return 0, err
		}
		return s.Conn.Write(p)
	}
	s.wr = rawCall{p: p}
	defer func() { s.wr.p = nil }()
	for {
		err := s.rc.Write(s.boundedWriteFn)
		if s.staleDeadline(err) {
			now := time.Now()
			switch {
			case s.wb.waitEnd.IsZero():
				s.wb.begin(now) // a deadline left from an earlier wait
				s.wb.waitN = s.wr.n
			case !now.Before(s.wb.waitEnd):
				return s.wr.n, err
			}
			if err := s.wb.arm(now, s.wb.waitEnd, s.setWriteDeadline); err != nil {
				return s.wr.n, err
			}
			continue
		}
		if err == nil && s.wr.errno != 0 {
			err = os.NewSyscallError("write", s.wr.errno)
		}
		return s.wr.n, err
	}
}

// boundedRawWrite is rawWrite that arms the deadline before each wait for
// room that follows progress.
func (s *Socket) boundedRawWrite(fd uintptr) bool {
	if s.rawWrite(fd) {
		return true
	}
	if s.wr.n != s.wb.waitN {
		now := time.Now()
		s.wb.begin(now)
		s.wb.waitN = s.wr.n
		_ = s.wb.arm(now, s.wb.waitEnd, s.setWriteDeadline) // fails only when closed: the wait fails too
	}
	return false
}
