package h1

import (
	"syscall"
	"unsafe"
)

// AckNow has the kernel acknowledge what has been received at once
// (TCP_QUICKACK) instead of at its delayed-ACK timer, 40 ms at the least
// on Linux. A relay calls it when it has read everything that arrived in
// the middle of a body and is about to wait for the rest.
//
// Why: a request/response connection is in the kernel's "pingpong" mode,
// where a read that empties the queue does not send the ACK of a single
// segment shorter than the largest one seen, and a read does not send a
// window update either while the advertised window stays large. A sender
// that holds its last piece until everything before it is acknowledged
// (Nagle's rule for a piece shorter than the MSS) then sits on that timer.
// Measured at HTTP/1.1, 256 connections, 64 KiB, nginx as the backend
// (sendfile, tcp_nopush): 0.1-0.6 % of responses arrived as 61,711 bytes,
// then a 40 ms wait for RAUTA's delayed ACK, then the last 4,096, which
// left the backend within 0.1 ms of that ACK (docs/performance.md,
// round 18). A connection that is not a raw-capable socket does nothing.
func (s *Socket) AckNow() {
	if s.rc == nil {
		return
	}
	_ = s.rc.Control(s.ackNowFn) // best effort: the timer still sends it
}

// rawAckNow sets TCP_QUICKACK, which sends a scheduled ACK now; the kernel
// clears the mode again by itself once the connection is back to
// request and response.
func rawAckNow(fd uintptr) {
	one := int32(1)
	_, _, _ = syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK,
		uintptr(unsafe.Pointer(&one)), unsafe.Sizeof(one), 0)
}
