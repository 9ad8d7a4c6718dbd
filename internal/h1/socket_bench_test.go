package h1

import (
	"net"
	"syscall"
	"testing"
	"unsafe"
)

// BenchmarkSocketCalls: a 1 KiB write and its read over loopback TCP with
// the file calls (write(2), read(2)) against the socket calls Socket uses
// (sendto(2), recvfrom(2)): the reason for rawRead's and rawWrite's choice
// (docs/performance.md, round 30). Run with GOMAXPROCS=1 on one CPU.
func BenchmarkSocketCalls(b *testing.B) {
	for _, bc := range []struct {
		name        string
		write, read uintptr
	}{
		{"write-read", syscall.SYS_WRITE, syscall.SYS_READ},
		{"sendto-recvfrom", syscall.SYS_SENDTO, syscall.SYS_RECVFROM},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w, r := rawPair(b)
			p, q := make([]byte, 1024), make([]byte, 4096)
			for b.Loop() {
				if _, _, e := syscall.RawSyscall6(bc.write, w, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0); e != 0 {
					b.Fatal(e)
				}
				for got := 0; got < len(p); {
					n, _, e := syscall.RawSyscall6(bc.read, r, uintptr(unsafe.Pointer(&q[0])), uintptr(len(q)), 0, 0, 0)
					if e != 0 && e != syscall.EAGAIN {
						b.Fatal(e)
					}
					if e == 0 {
						got += int(n)
					}
				}
			}
		})
	}
}

// rawPair returns the descriptors of the two ends of a loopback TCP
// connection, kept open until the benchmark ends.
func rawPair(b *testing.B) (w, r uintptr) {
	c, s := tcpPair(b)
	fd := func(nc net.Conn) uintptr {
		var d uintptr
		rc, err := nc.(*net.TCPConn).SyscallConn()
		if err == nil {
			err = rc.Control(func(f uintptr) { d = f })
		}
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	return fd(c), fd(s)
}
