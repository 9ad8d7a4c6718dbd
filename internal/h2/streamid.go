package h2

import (
	"context"
	"sync"
	"time"
)

// The stream's identifier reaches the handler in the request's context,
// for telemetry that has to name the stream on its connection (the
// gateway's request timing record, which the eBPF observer pairs with the
// HTTP/2 stream it saw on the wire: docs/observer.md). The context is a
// field of the stream, so it costs no allocation.

// streamIDKey is the context key of StreamID.
type streamIDKey struct{}

// streamContext is the request's context: the stream's own, answering
// StreamID's key with itself. It is not a context.WithCancel of the
// connection's context: that registered every stream in the parent's
// child set (a map insert and delete under the parent's lock per stream,
// and for every context.AfterFunc on the request, as the proxy's pooled
// path makes). The connection ends its running streams' contexts itself
// when its own ends (conn.endRunning); AfterFunc below gives the context
// package a callback list instead of a child set.
type streamContext struct {
	parent context.Context // the connection's: values and deadline
	id     uint32

	mu    sync.Mutex
	done  chan struct{} // made by the first Done, closed by cancel
	err   error
	funcs []afterFunc // registered by AfterFunc, run once by cancel
	next  uint64      // id of the next afterFunc
	// inline backs funcs for the first two: the proxy registers one per
	// request.
	inline [2]afterFunc
}

type afterFunc struct {
	id uint64
	f  func()
	// async: f runs in its own goroutine (AfterFunc, the package
	// function), not on cancel's.
	async bool
}

func (c *streamContext) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *streamContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *streamContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *streamContext) Value(key any) any {
	if _, ok := key.(streamIDKey); ok {
		return c
	}
	return c.parent.Value(key)
}

// AfterFunc runs f once the context ends; stop unregisters it and reports
// whether it did before f ran. context.AfterFunc and WithCancel on the
// request's context use it (the context package's afterFuncer), so
// deriving a context from a stream's costs no goroutine.
func (c *streamContext) AfterFunc(f func()) (stop func() bool) { return c.register(f, false) }

// AfterFunc is context.AfterFunc: f runs in its own goroutine once ctx
// ends, and stop unregisters it. On the context of a request served here
// it registers f with the stream itself: context.AfterFunc would wrap the
// stream's context in one of its own, make the channel Done returns and
// two closures (five of the six allocations the proxy's watch on a
// request cost). On any other context it is context.AfterFunc.
func AfterFunc(ctx context.Context, f func()) (stop func() bool) {
	if c, ok := ctx.(*streamContext); ok {
		return c.register(f, true)
	}
	return context.AfterFunc(ctx, f)
}

// register adds f to the functions cancel runs; async runs it in its own
// goroutine.
func (c *streamContext) register(f func(), async bool) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	id := c.next
	c.next++
	if c.funcs == nil {
		c.funcs = c.inline[:0]
	}
	c.funcs = append(c.funcs, afterFunc{id: id, f: f, async: async})
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, a := range c.funcs {
			if a.id == id {
				c.funcs = append(c.funcs[:i], c.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends the context with err, once. The functions the context
// package registered run here, on the caller's goroutine: it registers
// only the cancel of a derived context, which takes that context's own
// lock and starts a goroutine for a user's AfterFunc, so it neither blocks
// nor takes c.mu of the connection (which the caller may hold). Those of
// the package's AfterFunc get a goroutine of their own.
func (c *streamContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for _, a := range funcs {
		if a.async {
			go a.f()
		} else {
			a.f()
		}
	}
}

// StreamID returns the HTTP/2 stream identifier of the request whose
// context is ctx, 0 when ctx is not a request served here.
func StreamID(ctx context.Context) uint32 {
	if c, ok := ctx.Value(streamIDKey{}).(*streamContext); ok {
		return c.id
	}
	return 0
}
