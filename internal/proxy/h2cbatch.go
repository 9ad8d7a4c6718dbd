package proxy

import (
	"context"
	"net"
	"runtime"
	"sync"
)

// The h2c backend connections (gRPC) belong to internal/h2client, which
// flushes its buffer after every request's HEADERS and again after each
// DATA frame: with 64 calls in flight on one connection, a write system
// call each (each also delivering the bytes to the backend's socket on
// loopback) was about a fifth of the proxy's CPU per gRPC call. batchConn
// gathers those writes, from every stream of the connection, and one
// writer goroutine sends what gathered in one write, as the HTTP/2 server
// (internal/h2) does towards clients.

// batchYieldBelow: a batch smaller than this waits for the goroutines
// already runnable before it is written (see writeLoop).
const batchYieldBelow = 16 << 10

// batchDialer dials backend connections whose writes are batched.
type batchDialer struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	max  int // Options.H2CWriteBatch
}

func (d batchDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return newBatchConn(c, d.max), nil
}

// batchConn is a net.Conn whose Write queues the bytes and returns; its
// writer goroutine sends them. A write error is returned by the next
// Write and closes the connection, so the client's reader sees it too:
// as with TCP itself, a Write that returned is not yet delivered.
type batchConn struct {
	net.Conn
	max int // bytes queued before Write waits (a Write into an empty batch may pass it)

	mu         sync.Mutex
	wake       sync.Cond // the writer waits for output
	room       sync.Cond // Write waits for the batch to drain
	out        []byte    // bytes waiting to be written
	spare      []byte    // the buffer out swaps with while the writer writes
	writerIdle bool
	err        error // sticky: a write failed or the connection closed
	closeOnce  sync.Once
}

func newBatchConn(c net.Conn, max int) *batchConn {
	b := &batchConn{Conn: c, max: max}
	b.wake.L, b.room.L = &b.mu, &b.mu
	go b.writeLoop()
	return b
}

// Write queues p, waiting while the batch is full.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.out) > 0 && len(b.out)+len(p) > b.max {
		b.room.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.out = append(b.out, p...)
	if b.writerIdle {
		b.writerIdle = false
		b.wake.Signal()
	}
	return len(p), nil
}

// writeLoop sends the queued bytes until the connection fails or closes.
func (b *batchConn) writeLoop() {
	for {
		b.mu.Lock()
		for len(b.out) == 0 && b.err == nil {
			b.writerIdle = true
			b.wake.Wait()
		}
		if b.err != nil {
			b.mu.Unlock()
			return
		}
		if len(b.out) < batchYieldBelow {
			// The goroutine whose Write woke this one ran it next, ahead of
			// the other streams' goroutines already runnable: yield once so
			// that their frames join this batch (as internal/h2's writer).
			b.mu.Unlock()
			runtime.Gosched()
			b.mu.Lock()
		}
		out := b.out
		b.out, b.spare = b.spare[:0], nil
		b.mu.Unlock()

		_, err := b.Conn.Write(out)

		b.mu.Lock()
		b.spare = out[:0]
		if err != nil && b.err == nil {
			b.err = err
		}
		b.room.Broadcast()
		failed := b.err != nil
		b.mu.Unlock()
		if failed {
			b.Close() //nolint:errcheck // the failure is what Write reports
			return
		}
	}
}

// Close closes the connection; bytes still queued are dropped, as a
// close drops what the kernel has not sent after a reset.
func (b *batchConn) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.mu.Lock()
		if b.err == nil {
			b.err = net.ErrClosed
		}
		b.out, b.spare = nil, nil
		b.wake.Broadcast()
		b.room.Broadcast()
		b.mu.Unlock()
		err = b.Conn.Close()
	})
	return err
}
