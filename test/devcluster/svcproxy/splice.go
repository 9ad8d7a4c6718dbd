package svcproxy

import (
	"io"
	"net"
)

// splice copies bytes both ways until both directions ended. An EOF from one side is passed
// on as a half-close (shutdown of the write side) so request/response protocols that close
// their sending side early still get their answer; an error on either side closes both.
// On Linux io.Copy between TCP connections uses splice(2), so bytes do not pass through
// user space.
func splice(a, b *net.TCPConn) {
	done := make(chan struct{}, 2)
	pipe := func(dst, src *net.TCPConn) {
		defer func() { done <- struct{}{} }()
		if _, err := io.Copy(dst, src); err != nil {
			a.Close()
			b.Close()
			return
		}
		_ = dst.CloseWrite()
	}
	go pipe(a, b)
	go pipe(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}
