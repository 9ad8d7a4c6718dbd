package pair

import (
	"net/netip"

	"github.com/false-systems/rauta/internal/tracecontext"
)

type connKey struct {
	client, server netip.AddrPort
	// stream and pid tell apart connections with the same addresses that
	// are not one TCP stream: 0 for packets; for plaintext from TLS
	// library probes, the library's connection object and the process
	// (each process's view of a TLS connection is its own stream, and
	// packet resets do not end it).
	stream uint64
	pid    uint32
}

// pending is a request waiting for its response.
type pending struct {
	ts  uint64
	seq uint32
	// ack is the client's acknowledgment number on the request's segment:
	// how much of the server's stream the client had received when it
	// sent the request (valid when hasAck).
	ack    uint32
	hasAck bool
	// gapBefore: the request before it ended earlier than it starts, so a
	// request in between was not captured (its record was lost).
	gapBefore bool
	method    string
	target    string
	host      string
	ua        string
	cl        int64
	unparsed  bool
	// truncated: the request-target was cut (capture window or
	// httpparse.MaxTargetLen).
	truncated bool
	// expired: already reported as a timeout; kept so that its late
	// response, if it comes, answers it and not the next request.
	expired bool
	marks   uint8
	version string // "1.0", "1.1", "" unknown
	// trace and traceState are the request's W3C trace context (zero and
	// "" without a valid traceparent).
	trace      tracecontext.Parent
	traceState string
	// idHash is the request's X-Request-Id hash (httpparse).
	idHash uint64
}

// recentResponses is how many response sequence numbers are remembered to
// drop copies of a status line seen at more than one capture point.
const recentResponses = 4

type conn struct {
	key        connKey
	prev, next *conn // LRU links
	pending    []pending
	lastReqSeq uint32
	haveReq    bool
	lastSeen   uint64 // kernel time of the last message
	// bodyEnd is the sequence number after the last request's body, when
	// its length was known from the head.
	bodyEnd     uint32
	haveBodyEnd bool
	respSeqs    [recentResponses]uint32
	respN       int // valid entries in respSeqs
	respNext    int
	// respEnd is the server's sequence number after the last response
	// seen, when its length was known (haveRespEnd).
	respEnd     uint32
	haveRespEnd bool
	// synced: the next response answers pending[0] if it starts at
	// respEnd. Set when a response was paired, cleared when one could not
	// be paired with certainty.
	synced   bool
	upgraded bool // 101 Switching Protocols seen
	// ifaces are the first two interfaces the connection was captured on
	// (0: none yet): a pod's veth, and the veth of its peer or the
	// uplink. Two is what one node sees of a connection; a third is not
	// remembered, and such a connection is left to the idle timeout.
	ifaces [2]uint32
}

// noteIface remembers an interface the connection was captured on.
func (c *conn) noteIface(idx uint32) {
	switch {
	case idx == 0 || c.ifaces[0] == idx || c.ifaces[1] == idx:
	case c.ifaces[0] == 0:
		c.ifaces[0] = idx
	case c.ifaces[1] == 0:
		c.ifaces[1] = idx
	}
}

// seenOn reports whether the connection was captured on an interface of
// gone.
func (c *conn) seenOn(gone []uint32) bool {
	for _, g := range gone {
		if g != 0 && (c.ifaces[0] == g || c.ifaces[1] == g) {
			return true
		}
	}
	return false
}

func (c *conn) reset() {
	pend := c.pending[:0]
	clear(c.pending[:cap(c.pending)])
	*c = conn{pending: pend}
}

func (c *conn) pop() pending {
	r := c.pending[0]
	copy(c.pending, c.pending[1:])
	c.pending[len(c.pending)-1] = pending{}
	c.pending = c.pending[:len(c.pending)-1]
	return r
}

// live counts pending requests not yet reported (expired ones excluded).
func (c *conn) live() int {
	n := 0
	for i := range c.pending {
		if !c.pending[i].expired {
			n++
		}
	}
	return n
}

// isDuplicateRequest: the same first segment seen again, at another hook
// or as a retransmission.
func (c *conn) isDuplicateRequest(seq uint32) bool {
	if c.haveReq && c.lastReqSeq == seq {
		return true
	}
	for i := range c.pending {
		if c.pending[i].seq == seq {
			return true
		}
	}
	return false
}

// inBody: seq lies after the last request's start and before the end of
// its body (sequence numbers compared modulo 2^32).
func (c *conn) inBody(seq uint32) bool {
	return c.haveBodyEnd && c.haveReq && int32(seq-c.lastReqSeq) > 0 && int32(seq-c.bodyEnd) < 0
}

func (c *conn) isDuplicateResponse(seq uint32) bool {
	for i := 0; i < c.respN; i++ {
		if c.respSeqs[i] == seq {
			return true
		}
	}
	return false
}

func (c *conn) rememberResponse(seq uint32) {
	c.respSeqs[c.respNext] = seq
	c.respNext = (c.respNext + 1) % recentResponses
	if c.respN < recentResponses {
		c.respN++
	}
}

// list is an intrusive doubly linked list with a sentinel; front is the
// most recently used.
type list struct{ root conn }

func (l *list) init() { l.root.next, l.root.prev = &l.root, &l.root }

func (l *list) pushFront(c *conn) {
	c.prev, c.next = &l.root, l.root.next
	l.root.next.prev = c
	l.root.next = c
}

func (l *list) remove(c *conn) {
	if c.prev == nil {
		return
	}
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
}

func (l *list) moveToFront(c *conn) {
	if l.root.next == c {
		return
	}
	l.remove(c)
	l.pushFront(c)
}

func (l *list) back() *conn {
	if l.root.prev == &l.root {
		return nil
	}
	return l.root.prev
}
