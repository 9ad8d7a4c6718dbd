package h1

import (
	"errors"
	"os"
	"syscall"
)

// WriteRead writes p, then reads into q as Read does (at least one byte,
// under the bounds of BoundReads), without the read that would find
// nothing: a backend's answer cannot come before the request it answers,
// so once p is written the read waits for the socket to become readable
// before it tries.
//
// Why: Write then Read tries a read right after the write, and the answer
// is rarely there yet (the other end has not run): a system call per
// request that finds nothing (EAGAIN), 1.73 of the 6.8 RAUTA made per
// proxied HTTP/1.1 request against nginx's 5.0, which reads only once its
// event loop says a socket is readable (docs/performance.md, round 16).
// The write and the wait are one call into the netpoller: each call starts
// by forgetting the readiness seen before it, so an answer arriving
// between a separate Write and a Read that did not try first would be
// missed, and the read would wait for nothing. Inside one call the
// readiness is forgotten before the write, so anything arriving after the
// write wakes the wait. Readiness that came before the write and was
// forgotten is not waited for; the caller knows nothing was pending (a
// pooled connection is peeked at before reuse, upstream.Pool.Get).
//
// wrote is how much of p was written: an error with wrote < len(p) is the
// write's. A socket that takes only part of p at once gets the rest as
// Write gives it (each wait bounded by BoundWrites), and the read then
// tries first. No Write or other Read may run on s meanwhile.
func (s *Socket) WriteRead(p, q []byte) (wrote, n int, err error) {
	if s.rc == nil || len(p) == 0 || len(q) == 0 {
		return s.writeThenRead(p, q, 0)
	}
	s.wr = rawCall{p: p}
	s.sending = true
	if s.rb.per > 0 {
		n, err = s.boundedRead(q, s.writeReadFn)
	} else {
		n, err = s.read(q, s.writeReadFn)
	}
	wrote, errno, sending := s.wr.n, s.wr.errno, s.sending
	s.wr.p, s.sending = nil, false
	switch {
	case errno != 0:
		return wrote, 0, os.NewSyscallError("write", errno)
	case sending && errors.Is(err, ErrWouldBlock):
		// The socket took part of p: the rest as Write gives it.
		return s.writeThenRead(p, q, wrote)
	case sending:
		return wrote, 0, err // the call failed before the write (closed, interrupted)
	}
	return wrote, n, err
}

// writeThenRead writes p from its byte off on, then reads into q.
func (s *Socket) writeThenRead(p, q []byte, off int) (int, int, error) {
	w, err := s.Write(p[off:])
	if err != nil {
		return off + w, 0, err
	}
	n, err := s.Read(q)
	return len(p), n, err
}

// rawWriteRead is WriteRead's call into the netpoller: while the write is
// not done, it writes, and once all of p is written it arms the read's
// deadline and asks to wait; after the wait it reads. A write the socket
// cannot take whole, or that fails, returns at once as EAGAIN, which
// WriteRead sorts out.
func (s *Socket) rawWriteRead(fd uintptr) bool {
	if !s.sending {
		if s.rb.per > 0 {
			return s.boundedRawRead(fd)
		}
		return s.rawRead(fd)
	}
	if !s.rawWrite(fd) || s.wr.errno != 0 {
		s.rd.errno = syscall.EAGAIN
		return true
	}
	s.sending = false
	if s.rb.per > 0 {
		s.armReadWait()
	}
	return false
}
