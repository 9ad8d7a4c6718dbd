package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Socket reads and writes a TCP socket for the HTTP/1.1 engine without
// the runtime's blocking-syscall bookkeeping.
//
// Why: Go sockets are non-blocking, so read and write never sleep in the
// kernel, yet net.Conn still enters each one as a blocking system call.
// A loopback write delivers the segment to the receiver inside the call and
// takes tens of microseconds, longer than sysmon's 20 µs tick, so with few
// Ps sysmon takes the P away mid-write and wakes another thread to run it,
// and the writer parks when it returns: measured 0.5 context switches per
// proxied request against nginx's 0.2, and a kernel-time gap to match.
// Through syscall.RawConn the engine keeps the netpoller (waiting,
// deadlines, Close waking it) and issues the non-blocking read or write as
// a raw system call, which cannot block and so needs no handoff.
//
// A connection that is not a raw-capable socket (a test pipe, TLS) falls
// back to net.Conn's Read and Write.
type Socket struct {
	net.Conn
	rc syscall.RawConn // nil: use Conn's Read and Write

	// The read and the write in flight (one of each at most), seen by
	// readFn and writeFn, which are bound once so that no call allocates.
	rd, wr         rawCall
	readFn         func(fd uintptr) bool
	readNowFn      func(fd uintptr) bool
	boundedReadFn  func(fd uintptr) bool
	writeFn        func(fd uintptr) bool
	boundedWriteFn func(fd uintptr) bool
	peekFn         func(fd uintptr)
	ackNowFn       func(fd uintptr)
	writeReadFn    func(fd uintptr) bool
	// loopFn, loopBuf and loopGot serve ReadLoop (readloop.go); looping
	// is set while it runs.
	loopFn  func(fd uintptr) bool
	loopBuf func() []byte
	loopGot func(n int, err error) bool
	looping bool
	// sending: WriteRead's write is not done yet (writeread.go).
	sending bool
	peekBuf [1]byte
	peekN   int
	// readCalls counts the read system calls rawRead made, the ones that
	// found nothing included: what the tests of the engine's waits count.
	readCalls int
	// idleReadFn, idlePool and idleBuf serve ReadIdle (idle.go).
	idleReadFn func(fd uintptr) bool
	idlePool   interface {
		Get() any
		Put(any)
	}
	idleBuf *[]byte

	// rb and wb bound each wait of a read or write (wait.go).
	rb, wb waitBound
	// interrupted is set once interrupt has run: the connection is done.
	interrupted atomic.Bool
}

// rawCall is the buffer and outcome of one raw read or write.
type rawCall struct {
	p     []byte
	n     int
	errno syscall.Errno
}

func NewSocket(nc net.Conn) *Socket {
	s := &Socket{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
			s.readFn = s.rawRead
			s.readNowFn = s.rawReadNow
			s.boundedReadFn = s.boundedRawRead
			s.writeFn = s.rawWrite
			s.boundedWriteFn = s.boundedRawWrite
			s.peekFn = s.rawPeek
			s.ackNowFn = rawAckNow
			s.idleReadFn = s.rawIdleRead
			s.writeReadFn = s.rawWriteRead
			s.loopFn = s.rawLoopRead
		}
	}
	return s
}

// Read reads at least one byte, or returns io.EOF when the peer closed
// its side, or the error that stopped it (a deadline, a closed
// connection, a reset).
func (s *Socket) Read(p []byte) (int, error) {
	if s.rb.per > 0 {
		return s.boundedRead(p, s.boundedReadFn)
	}
	if s.rc == nil {
		return s.Conn.Read(p)
	}
	return s.read(p, s.readFn)
}

// Raw reports a socket read and written with raw system calls: a TCP
// socket, not a test pipe or a TLS connection. Only a raw socket can peek
// (Idle, Peek), read without waiting (ReadNow) or read idle (ReadIdle).
func (s *Socket) Raw() bool { return s.rc != nil }

// ErrWouldBlock: nothing to read yet.
var ErrWouldBlock = errors.New("nothing to read yet")

// ReadNow is Read without the wait: it returns errWouldBlock when nothing
// has arrived, so a relay can send what it holds before it sleeps. A
// connection that is not a raw-capable socket cannot be asked and always
// returns errWouldBlock.
func (s *Socket) ReadNow(p []byte) (int, error) {
	if s.rc == nil {
		return 0, ErrWouldBlock
	}
	return s.read(p, s.readNowFn)
}

func (s *Socket) read(p []byte, fn func(fd uintptr) bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.looping {
		return 0, ErrReadInLoop
	}
	s.rd = rawCall{p: p}
	err := s.rc.Read(fn)
	s.rd.p = nil
	if err != nil {
		return 0, err
	}
	return readResult(s.rd.n, s.rd.errno)
}

// readResult is what a raw read that returned n bytes and errno gives its
// caller: EAGAIN as ErrWouldBlock, end of stream as io.EOF.
func readResult(n int, errno syscall.Errno) (int, error) {
	switch {
	case errno == syscall.EAGAIN:
		return 0, ErrWouldBlock
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// rawRead tries one non-blocking read; false asks the netpoller to wait
// for the socket to become readable and call it again. It reads with
// recvfrom(2), not read(2), and rawWrite writes with sendto(2), as nginx
// reads: the socket calls skip the file layer's work (position lock,
// permission hooks, notification) that read(2) and write(2) do for any
// file, about 4 % of a loopback write and read pair here
// (docs/performance.md, round 30).
func (s *Socket) rawRead(fd uintptr) bool {
	for {
		p := s.rd.p
		s.readCalls++
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
		switch e {
		case 0:
			s.rd.n = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.rd.errno = e
		return true
	}
}

// rawReadNow is rawRead that never asks to wait.
func (s *Socket) rawReadNow(fd uintptr) bool {
	if !s.rawRead(fd) {
		s.rd.errno = syscall.EAGAIN
	}
	return true
}

// Write writes all of p or returns the error that stopped it.
func (s *Socket) Write(p []byte) (int, error) {
	if s.wb.per > 0 {
		return s.boundedWrite(p)
	}
	if s.rc == nil {
		return s.Conn.Write(p)
	}
	s.wr = rawCall{p: p}
	err := s.rc.Write(s.writeFn)
	n, errno := s.wr.n, s.wr.errno
	s.wr.p = nil
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	return n, err
}

// rawWrite writes what the socket takes without blocking; false asks the
// netpoller to wait until it takes more. MSG_NOSIGNAL: a write to a reset
// connection fails with EPIPE without raising SIGPIPE, which the runtime
// would otherwise field (and ignore) once per such write.
func (s *Socket) rawWrite(fd uintptr) bool {
	for s.wr.n < len(s.wr.p) {
		rest := s.wr.p[s.wr.n:]
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)), syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			s.wr.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.wr.errno = e
			return true
		}
	}
	return true
}

// Idle reports a socket with nothing to read and not closed by the peer:
// a non-blocking one-byte peek finds no data (EAGAIN). An idle keep-alive
// connection has nothing to read, so EOF or any data means the backend
// closed it (or broke the protocol). A connection that is not a
// raw-capable socket cannot be checked and counts as idle.
func (s *Socket) Idle() bool {
	errno, n := s.Peek()
	return errno == syscall.EAGAIN && n <= 0
}

// Peek peeks at one byte without waiting, and without regard to the
// read deadline: errno EAGAIN means nothing to read, n 0 with errno 0 the
// peer's FIN, n 1 data. A connection that is not a raw-capable socket
// reads as EAGAIN.
func (s *Socket) Peek() (syscall.Errno, int) {
	if s.rc == nil {
		return syscall.EAGAIN, -1
	}
	s.rd = rawCall{}
	if s.rc.Control(s.peekFn) != nil {
		return syscall.EBADF, -1
	}
	return s.rd.errno, s.peekN
}

// rawPeek peeks at one byte without waiting.
func (s *Socket) rawPeek(fd uintptr) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.peekBuf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	s.rd.errno, s.peekN = e, int(n)
}
