package h2

import "net/textproto"

// Bounds of a CanonicalNames: peers repeat their field names message after
// message, so a few dozen cover them; a peer sending ever new or long names
// pins at most about 2 KiB of a connection's memory.
const (
	maxCanonNames   = 32
	maxCanonNameLen = 32
)

// CanonicalNames remembers the canonical forms of field names a
// connection receives, as HTTP/2 sends them (lower case): every name
// outside net/textproto's own short table (te, grpc-status,
// sec-fetch-mode, ...) otherwise costs an allocation to canonicalize, per
// field of every message. The zero value is ready; it belongs to the one
// goroutine that reads the connection.
type CanonicalNames struct {
	m map[string]string
}

// Of returns textproto.CanonicalMIMEHeaderKey(name), remembered while
// there is room for it.
func (c *CanonicalNames) Of(name string) string {
	if k, ok := c.m[name]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	if len(name) <= maxCanonNameLen && len(c.m) < maxCanonNames {
		if c.m == nil {
			c.m = make(map[string]string, 8)
		}
		c.m[name] = k
	}
	return k
}

// Len is the number of names remembered.
func (c *CanonicalNames) Len() int { return len(c.m) }
