package h1

import "errors"

// ReadLoop reads the socket in one call into the netpoller, for as long as
// got wants: each read's outcome goes to got, which says whether to wait
// until the socket is readable and read again (true) or to return (false).
// buf gives the room each read fills. ReadLoop returns nil when got
// returned false, or the error that ended a wait (a deadline, a close).
//
// Why: each call into the netpoller starts by forgetting the readiness it
// saw before, so a read loop of separate calls must try a read before
// every wait, and a keep-alive connection's next request is rarely there
// when the response has just gone out: a read that finds nothing (EAGAIN)
// per request, about 0.9 of the 1.73 such reads per proxied HTTP/1.1
// request in docs/performance.md's round 16. Inside one call, any bytes
// that arrive after its start wake the wait, so after the first try a read
// happens only once the socket is readable. got runs inside the call: it
// may serve a whole request (talk to a backend, write to this socket), but
// must not read this socket other than through ReadLoop (any such read
// fails with ErrReadInLoop rather than deadlock on the socket's read lock).
//
// A socket that is not a raw-capable one cannot loop; ReadLoop returns
// ErrWouldBlock at once, having called nothing.
func (s *Socket) ReadLoop(buf func() []byte, got func(n int, err error) (again bool)) error {
	if s.rc == nil {
		return ErrWouldBlock
	}
	s.loopBuf, s.loopGot = buf, got
	s.looping = true
	err := s.rc.Read(s.loopFn)
	s.looping = false
	s.loopBuf, s.loopGot = nil, nil
	return err
}

// ErrReadInLoop: a read of a socket inside its own ReadLoop's got.
var ErrReadInLoop = errors.New("h1: read of a socket inside its ReadLoop")

// rawLoopRead is ReadLoop's call into the netpoller: a read, its outcome
// to got, and a wait when got asks for one.
func (s *Socket) rawLoopRead(fd uintptr) bool {
	s.rd = rawCall{p: s.loopBuf()}
	n, err := 0, error(ErrWouldBlock)
	if s.rawRead(fd) {
		n, err = readResult(s.rd.n, s.rd.errno)
	}
	s.rd.p = nil // got may use s.rd (a peek)
	return !s.loopGot(n, err)
}
