package h2

import "context"

// The stream's identifier reaches the handler in the request's context,
// for telemetry that has to name the stream on its connection (the
// gateway's request timing record, which the eBPF observer pairs with the
// HTTP/2 stream it saw on the wire: docs/observer.md). The context is a
// field of the stream, so it costs no allocation.

// streamIDKey is the context key of StreamID.
type streamIDKey struct{}

// streamContext is the request's context: the stream's cancel context,
// answering StreamID's key with itself.
type streamContext struct {
	context.Context
	id uint32
}

func (c *streamContext) Value(key any) any {
	if _, ok := key.(streamIDKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// StreamID returns the HTTP/2 stream identifier of the request whose
// context is ctx, 0 when ctx is not a request served here.
func StreamID(ctx context.Context) uint32 {
	if c, ok := ctx.Value(streamIDKey{}).(*streamContext); ok {
		return c.id
	}
	return 0
}
