package capture

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Reader.Next after Close.
var ErrClosed = os.ErrClosed

// ErrTimeout is returned by Reader.Next when the deadline passed with no
// record available.
var ErrTimeout = os.ErrDeadlineExceeded

// releaseEvery is how many records Next reads before it moves the shared
// consumer position. Every store to it is a cache line the producing CPUs
// then fetch back (bpf_ringbuf_reserve reads it for each record); holding
// back 64 records keeps at most ~37 KiB of the ring from the kernel.
const releaseEvery = 64

// Reader reads events from the ring buffer in place: Next decodes each
// record where the kernel wrote it, without copying, and gives the memory
// back to the kernel in batches. The Event it fills is valid until the
// next call.
//
// Waiting goes through Go's network poller (the ring's file descriptor is
// pollable), so a reader with nothing to do parks its goroutine instead of
// holding a thread in epoll_wait; waking it costs no thread handoff.
type Reader struct {
	// mu is held by Next while it uses the mapping and by Close while it
	// unmaps it. Only one goroutine calls Next, so it is uncontended
	// except during Close.
	mu     sync.Mutex
	ring   *ring
	pos    uint64 // start of the next unread record
	prod   uint64 // producer position last seen; records before it are reserved
	held   int    // records read since the consumer position was last moved
	file   *os.File
	poll   syscall.RawConn
	closed atomic.Bool
	bad    uint64
}

// NewReader opens a reader on the events ring buffer.
func NewReader(events *ebpf.Map) (*Reader, error) {
	if events.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("open ring buffer reader: map %s is a %s, not a ring buffer", events, events.Type())
	}
	size := int(events.MaxEntries())
	if size < os.Getpagesize() || size&(size-1) != 0 {
		return nil, fmt.Errorf("open ring buffer reader: size %d is not a power of two of pages", size)
	}
	rg, err := mapRing(events.FD(), size)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", explainPerm(err))
	}
	file, poll, err := pollable(events.FD())
	if err != nil {
		_ = rg.unmap()
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	r := &Reader{ring: rg, file: file, poll: poll}
	// Start where the kernel's consumer is (0 for a new map).
	r.pos = atomic.LoadUint64(rg.consPos)
	r.prod = r.pos
	return r, nil
}

// pollable registers a duplicate of the map's descriptor with Go's poller.
// The duplicate shares the open file, so O_NONBLOCK lands on the map's
// descriptor too; the bpf(2) and mmap(2) calls made on it ignore the flag.
func pollable(mapFD int) (*os.File, syscall.RawConn, error) {
	fd, err := unix.FcntlInt(uintptr(mapFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("dup ring buffer fd: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, nil, fmt.Errorf("ring buffer fd non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ringbuf")
	// os.NewFile falls back to blocking I/O when the poller refuses the
	// descriptor; deadlines then fail, and so would every wait.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("ring buffer fd not pollable: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("ring buffer fd: %w", err)
	}
	return f, rc, nil
}

// SetDeadline makes Next return ErrTimeout once t passes with no record.
// The zero time means no deadline.
func (r *Reader) SetDeadline(t time.Time) { _ = r.file.SetReadDeadline(t) }

// Next blocks for the next well-formed record and decodes it into e; e.Data
// points into the ring and is valid until the next call. Malformed records
// (which a matching kernel object never writes) are skipped and counted in
// Malformed.
func (r *Reader) Next(e *Event) error {
	r.mu.Lock()
	err := r.next(e)
	r.mu.Unlock()
	return err
}

func (r *Reader) next(e *Event) error {
	if r.closed.Load() {
		return fmt.Errorf("ring buffer: %w", ErrClosed)
	}
	timedOut := false
	for {
		if r.pos == r.prod {
			r.prod = r.ring.producer()
		}
		if r.pos != r.prod {
			raw, next, state, err := r.ring.record(r.pos, r.prod)
			if err != nil {
				return err
			}
			switch state {
			case recordBusy:
				// The kernel reserved this record and is filling it;
				// programs run with preemption off, so it is done
				// within nanoseconds.
				runtime.Gosched()
				continue
			case recordDiscard:
				r.pos = next
				continue
			}
			// Records before this one are done with: hand them back
			// now and then, not after each one.
			if r.held++; r.held >= releaseEvery {
				r.ring.release(r.pos)
				r.held = 0
			}
			r.pos = next
			if err := DecodeEvent(raw, e); err != nil {
				r.bad++
				continue
			}
			return nil
		}
		// Everything read: give it all back, then wait.
		r.ring.release(r.pos)
		r.held = 0
		if timedOut {
			return ErrTimeout
		}
		var err error
		timedOut, err = r.wait()
		if err != nil {
			return err
		}
	}
}

// wait parks until the kernel wakes the reader, the deadline passes
// (timedOut), or Close is called. The check runs after the poller has
// been armed, so a wakeup that raced the caller's last look is not lost.
func (r *Reader) wait() (timedOut bool, err error) {
	err = r.poll.Read(func(uintptr) bool { return r.ring.producer() != r.pos })
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return true, nil
	case r.closed.Load() || errors.Is(err, os.ErrClosed):
		// The poller reports a file closed under a waiter as "use of
		// closed file", which is not os.ErrClosed.
		return false, fmt.Errorf("ring buffer: %w", ErrClosed)
	}
	return false, fmt.Errorf("wait for ring buffer: %w", err)
}

// Malformed is the number of records skipped because they did not decode.
// Only the goroutine calling Next may read it.
func (r *Reader) Malformed() uint64 { return r.bad }

// Close unblocks Next and releases the reader. It is safe to call from
// any goroutine, more than once.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	// Closing the file wakes a Next parked in the poller; then wait for it
	// to leave the mapping before unmapping it.
	ferr := r.file.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(ferr, r.ring.unmap())
}
