package h1

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// TestWriteReadDoesNotTryBeforeTheAnswer: WriteRead makes one read system
// call for an answer that comes after a pause, where Write then Read makes
// two (the first finds nothing): the system call round 16 of
// docs/performance.md counted 1.73 times per proxied request.
func TestWriteReadDoesNotTryBeforeTheAnswer(t *testing.T) {
	ours, peer := tcpPair(t)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // the answer is not there when the write returns
			if _, err := peer.Write([]byte("answer")); err != nil {
				return
			}
		}
	}()
	s := NewSocket(ours)
	s.BoundReads(10*time.Second, time.Time{})
	q := make([]byte, 64)

	before := s.readCalls
	if _, err := s.Write([]byte("question")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(q); err != nil || string(q[:n]) != "answer" {
		t.Fatalf("Write then Read: %q, %v", q[:n], err)
	}
	if separate := s.readCalls - before; separate != 2 {
		t.Fatalf("Write then Read made %d read calls, want 2 (one finds nothing)", separate)
	}

	before = s.readCalls
	wrote, n, err := s.WriteRead([]byte("question"), q)
	if err != nil || wrote != len("question") || string(q[:n]) != "answer" {
		t.Fatalf("WriteRead: wrote %d, read %q, %v", wrote, q[:n], err)
	}
	if got := s.readCalls - before; got != 1 {
		t.Errorf("WriteRead made %d read calls, want 1", got)
	}
}

// TestWriteReadAnswerRightAfterTheWrite: an answer that arrives while the
// write is still returning wakes the wait, bounded or not, time after time.
// A wait that missed it would sit until the test's 10 s bound.
func TestWriteReadAnswerRightAfterTheWrite(t *testing.T) {
	for _, bounded := range []bool{false, true} {
		t.Run("bounded="+strconv.FormatBool(bounded), func(t *testing.T) {
			ours, peer := tcpPair(t)
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := peer.Read(buf)
					if err != nil {
						return
					}
					if _, err := peer.Write(bytes.ToUpper(buf[:n])); err != nil {
						return
					}
				}
			}()
			s := NewSocket(ours)
			if bounded {
				s.BoundReads(10*time.Second, time.Time{})
			} else if err := s.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			q := make([]byte, 64)
			for i := range 2000 {
				p := []byte("ping " + strconv.Itoa(i))
				wrote, n, err := s.WriteRead(p, q)
				if err != nil || wrote != len(p) {
					t.Fatalf("exchange %d: wrote %d of %d, %v", i, wrote, len(p), err)
				}
				// The echo may come in pieces; read the rest as usual.
				for n < len(p) && err == nil {
					var m int
					m, err = s.Read(q[n:])
					n += m
				}
				if err != nil || !bytes.Equal(q[:n], bytes.ToUpper(p)) {
					t.Fatalf("exchange %d: read %q, %v", i, q[:n], err)
				}
			}
		})
	}
}

// TestWriteReadFullSocket: a write the socket cannot take at once is
// finished as Write does, then the answer is read.
func TestWriteReadFullSocket(t *testing.T) {
	ours, peer := tcpPair(t)
	if err := ours.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	p := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	go func() {
		n, err := io.CopyN(io.Discard, peer, int64(len(p)))
		if err != nil {
			return
		}
		_, _ = peer.Write([]byte("took " + strconv.FormatInt(n, 10)))
	}()
	s := NewSocket(ours)
	s.BoundReads(10*time.Second, time.Time{})
	s.BoundWrites(10*time.Second, time.Time{})
	q := make([]byte, 64)
	wrote, n, err := s.WriteRead(p, q)
	if err != nil || wrote != len(p) || string(q[:n]) != "took "+strconv.Itoa(len(p)) {
		t.Fatalf("wrote %d of %d, read %q, %v", wrote, len(p), q[:n], err)
	}
}

// TestWriteReadErrors: a failed write says so (wrote short of p); a read
// bound ends a wait for an answer that never comes; an interrupted socket
// writes nothing.
func TestWriteReadErrors(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		ours, peer := tcpPair(t)
		if err := peer.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
		peer.Close() // a reset
		s := NewSocket(ours)
		poll.Require(t, 10*time.Second, "the reset to arrive", func() bool {
			errno, _ := s.Peek()
			return errno != syscall.EAGAIN
		})
		wrote, _, err := s.WriteRead([]byte("question"), make([]byte, 64))
		var se *os.SyscallError
		if err == nil || wrote != 0 || !errors.As(err, &se) || se.Syscall != "write" {
			t.Fatalf("wrote %d, %v; want 0 and the write's error", wrote, err)
		}
	})
	t.Run("closed by the peer", func(t *testing.T) {
		// A backend closed the connection (its FIN is here); the write
		// draws its reset back, which must end the wait at once, not at
		// the bound.
		ours, peer := tcpPair(t)
		peer.Close()
		s := NewSocket(ours)
		poll.Require(t, 10*time.Second, "the FIN to arrive", func() bool {
			errno, n := s.Peek()
			return errno == 0 && n == 0
		})
		s.BoundReads(10*time.Second, time.Time{})
		wrote, n, err := s.WriteRead([]byte("question"), make([]byte, 64))
		if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("wrote %d, read %d, %v; want the close (EOF or a reset), not a wait until the bound", wrote, n, err)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		ours, peer := tcpPair(t)
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 64)
			n, _ := peer.Read(buf)
			got <- string(buf[:n])
		}()
		s := NewSocket(ours)
		s.BoundReads(50*time.Millisecond, time.Time{})
		checks := 0
		s.SetReadCheck(func() error { checks++; return nil })
		wrote, n, err := s.WriteRead([]byte("question"), make([]byte, 64))
		if wrote != len("question") || n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("wrote %d, read %d, %v; want the question written and the read bound's deadline", wrote, n, err)
		}
		if checks == 0 {
			t.Error("the read check never ran while the read waited")
		}
		if q := <-got; q != "question" {
			t.Errorf("peer got %q", q)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ours, peer := tcpPair(t)
		s := NewSocket(ours)
		s.BoundReads(10*time.Second, time.Time{})
		s.Interrupt()
		wrote, _, err := s.WriteRead([]byte("question"), make([]byte, 64))
		if wrote != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("wrote %d, %v; want nothing written and the interrupt's deadline", wrote, err)
		}
		if err := peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if n, err := peer.Read(make([]byte, 64)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("peer read %d bytes (%v) from an interrupted socket", n, err)
		}
	})
}
