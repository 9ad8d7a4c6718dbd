package h1

import (
	"errors"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestWriteToResetRaisesNoSIGPIPE: writes to a connection the peer reset
// fail with an error and raise no SIGPIPE (MSG_NOSIGNAL); write(2) would
// raise one per failed write, which the runtime fields and, for a socket,
// ignores.
func TestWriteToResetRaisesNoSIGPIPE(t *testing.T) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, syscall.SIGPIPE)
	defer signal.Stop(sig)

	ours, peer := tcpPair(t)
	if err := peer.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	peer.Close() // RST
	s := NewSocket(ours)
	p := make([]byte, 1024)
	var err error
	for range 20 {
		if _, err = s.Write(p); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write to a reset connection: %v, want EPIPE or ECONNRESET", err)
	}
	// A second failed write: EPIPE from here on.
	if _, err := s.Write(p); err == nil {
		t.Fatal("second write to a reset connection succeeded")
	}
	select {
	case <-sig:
		t.Error("a write to a reset connection raised SIGPIPE")
	case <-time.After(100 * time.Millisecond):
	}
}
