package pair

import (
	"net/netip"
	"time"

	"github.com/false-systems/rauta/internal/observe/httpparse"
)

// Config bounds the pairer. Zero fields take the defaults.
type Config struct {
	// MaxConns is the LRU size (default 65536). The least recently used
	// connection is evicted when a new one arrives; its pending requests
	// are counted in Stats.EvictedPending.
	MaxConns int
	// MaxPending is the most pipelined requests kept per connection
	// (default 32). More clears the connection (Stats.PipelineOverflow).
	MaxPending int
	// RequestTimeout: a request still without response after this long is
	// emitted with Outcome Timeout by Expire (default 30s).
	RequestTimeout time.Duration
	// Overdue, when set, is called by Expire for every request still
	// pending after OverdueAfter (and before RequestTimeout), with Outcome
	// Pending and EndNS the sweep's time, on every sweep until it ends:
	// consumers can report a hung request while it hangs instead of at
	// RequestTimeout. Marks it sets stay with the request. The *Exchange
	// is valid only during the call.
	Overdue func(*Exchange)
	// OverdueAfter is the age from which Overdue sees a request (default
	// 50ms: no processor judges anything younger).
	OverdueAfter time.Duration
	// IdleTimeout: a connection with nothing pending and no HTTP message
	// for this long is forgotten by Expire (default 60s). The kernel
	// reports RSTs but not FINs, so without it closed connections stayed
	// until the LRU pushed them out and Stats.Open never fell. A later
	// request on it simply tracks it again.
	IdleTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxConns <= 0 {
		c.MaxConns = 65536
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 32
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.OverdueAfter <= 0 {
		c.OverdueAfter = 50 * time.Millisecond
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	return c
}

// Stats are cumulative counters; Open is the current LRU size.
type Stats struct {
	Requests           uint64 // request heads accepted (after de-duplication)
	Responses          uint64 // status lines accepted (after de-duplication)
	Duplicates         uint64 // segments seen again (several capture points, retransmits)
	Exchanges          uint64 // exchanges emitted, any outcome
	UnmatchedResponses uint64 // responses with no pending request
	Informational      uint64 // 1xx interim responses (except 101), not paired
	Resets             uint64 // exchanges ended by a reset
	Timeouts           uint64 // exchanges ended by RequestTimeout
	Overdue            uint64 // Overdue calls (one per pending request per sweep)
	Evictions          uint64 // connections evicted from the LRU
	EvictedPending     uint64 // pending requests lost with evicted connections
	PipelineOverflow   uint64 // connections cleared for exceeding MaxPending
	LateResponses      uint64 // responses to requests already reported as timed out
	// BodySegments: request-like segments inside the body of the request
	// before them (by TCP sequence, when its length is known), or
	// unparsable ones while a request is pending: not requests.
	BodySegments uint64
	// UnansweredMalformed: unparsable requests that held a place in their
	// connection's order but ended without a response (timeout, reset,
	// eviction): text protocols such as memcached's "GET key". Not
	// exchanges: nothing about them is known.
	UnansweredMalformed uint64
	IdleClosed          uint64 // connections forgotten after IdleTimeout with nothing pending
	// Released: connections forgotten because an interface they were
	// captured on was deleted (ForgetInterfaces); their pending requests
	// count in EvictedPending.
	Released uint64
	// Unpaired: requests dropped without an exchange because a later
	// response answered a later request (theirs was not captured), or
	// because they were candidates of an Ambiguous response.
	Unpaired uint64
	// Ambiguous: responses that could not be paired with certainty (see
	// answer.go); dropped, never reported with a guessed request.
	Ambiguous uint64
	Open      int // connections tracked now
}

// Pairer is not safe for concurrent use: one goroutine feeds it.
type Pairer struct {
	cfg   Config
	emit  func(*Exchange)
	conns map[connKey]*conn
	lru   list
	free  []*conn
	ex    Exchange
	stats Stats
}

// New returns a pairer that calls emit for every finished exchange. The
// *Exchange is reused: it is valid only during the call.
func New(cfg Config, emit func(*Exchange)) *Pairer {
	cfg = cfg.withDefaults()
	p := &Pairer{cfg: cfg, emit: emit, conns: make(map[connKey]*conn)}
	p.lru.init()
	return p
}

// Stats returns the counters.
func (p *Pairer) Stats() Stats {
	s := p.stats
	s.Open = len(p.conns)
	return s
}

// Request records a request head sent from client to server, paired in
// order (no ACK known). The observer uses RequestSeg.
func (p *Pairer) Request(ts uint64, client, server netip.AddrPort, seq uint32, req *httpparse.Request) {
	p.RequestSeg(ts, client, server, Seg{Seq: seq}, req)
}

// RequestSeg records a request head sent from client to server, starting
// at s in the client's stream. req is nil when the head did not parse; it
// still holds a place in the connection's order so later responses pair
// correctly.
func (p *Pairer) RequestSeg(ts uint64, client, server netip.AddrPort, s Seg, req *httpparse.Request) {
	c := p.get(connKey{client, server, s.Stream, s.PID}, true)
	c.lastSeen = ts
	c.noteIface(s.Ifindex)
	if c.upgraded {
		return
	}
	seq := s.Seq
	if c.isDuplicateRequest(seq) {
		p.stats.Duplicates++
		return
	}
	if c.inBody(seq) || (req == nil && c.live() > 0) {
		// Body bytes that start with a method word. An unparsable one
		// while a request is pending is most likely that too; holding a
		// place for it would shift every later response by one.
		p.stats.BodySegments++
		return
	}
	if len(c.pending) >= p.cfg.MaxPending {
		p.stats.PipelineOverflow++
		p.drop(c)
		c = p.get(connKey{client, server, s.Stream, s.PID}, true)
		c.noteIface(s.Ifindex)
	}
	r := pending{ts: ts, seq: seq, ack: s.Ack, hasAck: s.HasAck}
	// The previous request's end is known and this one does not start
	// there: a request between them was not captured.
	r.gapBefore = c.haveReq && c.haveBodyEnd && seq != c.bodyEnd
	if req != nil {
		r.method, r.target, r.host, r.ua, r.cl = req.Method, req.Target, req.Host, req.UserAgent, req.ContentLength
		r.truncated = req.TargetTruncated
		r.trace, r.traceState, r.idHash = req.Trace, req.TraceState, req.RequestIDHash
		switch req.Minor {
		case 0:
			r.version = "1.0"
		case 1:
			r.version = "1.1"
		}
	} else {
		r.unparsed = true
		r.cl = -1
	}
	c.pending = append(c.pending, r)
	c.lastReqSeq, c.haveReq = seq, true
	c.haveBodyEnd = false
	if req != nil && req.HeadersComplete {
		if n, ok := req.BodyLen(); ok && n < 1<<31 {
			c.bodyEnd, c.haveBodyEnd = seq+uint32(req.HeadLen)+uint32(n), true
		}
	}
	p.stats.Requests++
}

// Response records a status line sent from server to client, paired in
// order (no ACK known). The observer uses ResponseSeg.
func (p *Pairer) Response(ts uint64, server, client netip.AddrPort, seq uint32, resp *httpparse.Response) {
	p.ResponseSeg(ts, server, client, Seg{Seq: seq}, resp)
}

// ResponseSeg records a status line sent from server to client, starting
// at s in the server's stream, and returns the bytes the response spans
// (head and body) when known, else 0: a response to HEAD has no body
// whatever its Content-Length says, which only the pairer knows. resp is
// nil when it did not parse: the request it answers is then consumed
// without an exchange (counted by the caller as a parse failure).
func (p *Pairer) ResponseSeg(ts uint64, server, client netip.AddrPort, s Seg, resp *httpparse.Response) (span int) {
	c := p.get(connKey{client, server, s.Stream, s.PID}, false)
	if c == nil {
		p.stats.UnmatchedResponses++
		return spanOf(resp, false)
	}
	c.lastSeen = ts
	c.noteIface(s.Ifindex)
	if c.upgraded {
		return 0
	}
	if c.isDuplicateResponse(s.Seq) {
		p.stats.Duplicates++
		return spanOf(resp, false)
	}
	c.rememberResponse(s.Seq)
	p.stats.Responses++
	idx, v := c.answer(s)
	head := v == answerFound && c.pending[idx].method == "HEAD"
	span = spanOf(resp, head)
	c.respEnd, c.haveRespEnd = s.Seq+uint32(span), span > 0
	switch v {
	case answerNone:
		p.stats.UnmatchedResponses++
		return span
	case answerAmbiguous:
		p.stats.Ambiguous++
		p.unpaired(c, idx)
		c.synced = false
		return span
	}
	p.unpaired(c, idx) // requests before the answer: their responses were missed
	c.synced = true
	if resp != nil && resp.Status >= 100 && resp.Status < 200 && resp.Status != 101 {
		p.stats.Informational++
		return span // interim: the final response answers the same request
	}
	req := c.pop()
	if req.expired {
		p.stats.LateResponses++
		return span
	}
	if resp == nil {
		return span
	}
	p.fill(&req, c.key)
	p.ex.Status = resp.Status
	p.ex.RespContentLength = resp.ContentLength
	p.ex.Outcome = Complete
	p.ex.EndNS = ts
	p.stats.Exchanges++
	p.emit(&p.ex)
	if resp.Status == 101 {
		// Switching protocols: the rest of the connection is not HTTP/1.x.
		c.upgraded = true
		c.pending = c.pending[:0]
	}
	return span
}

// unpaired drops the n oldest pending requests without an exchange: their
// responses were not captured, or could not be told apart.
func (p *Pairer) unpaired(c *conn, n int) {
	for range n {
		r := c.pop()
		switch {
		case r.expired:
			// Reported as a timeout already.
		case r.unparsed:
			p.stats.UnansweredMalformed++
		default:
			p.stats.Unpaired++
		}
	}
}

// spanOf is the length of a response (head and body) when known, else 0.
func spanOf(resp *httpparse.Response, head bool) int {
	if resp == nil {
		return 0
	}
	n, ok := resp.BodyLen(head)
	if !ok || n > 1<<30 {
		return 0
	}
	return resp.HeadLen + int(n)
}

// Reset records a RST between a and b (either direction): every pending
// request of that connection ends with Outcome Reset, and the connection
// is forgotten.
func (p *Pairer) Reset(ts uint64, a, b netip.AddrPort) {
	for _, k := range [2]connKey{{a, b, 0, 0}, {b, a, 0, 0}} {
		c := p.conns[k]
		if c == nil {
			continue
		}
		if !c.upgraded {
			for len(c.pending) > 0 {
				req := c.pop()
				if req.expired {
					continue
				}
				if req.unparsed {
					p.stats.UnansweredMalformed++
					continue
				}
				p.fill(&req, k)
				p.ex.Outcome = Reset
				p.ex.EndNS = ts
				p.stats.Resets++
				p.stats.Exchanges++
				p.emit(&p.ex)
			}
		}
		p.drop(c)
	}
}

// ForgetInterfaces forgets every connection captured on one of the
// deleted interfaces gone: a pod's veth goes with the pod, and its
// connections with it, so they need not wait for the idle timeout. Their
// unanswered requests are lost like an evicted connection's (no response
// can come; the pod's own resets, if any, were seen before its veth went).
// It walks every tracked connection; call it once per batch of deletions.
func (p *Pairer) ForgetInterfaces(gone []uint32) (released int) {
	if len(gone) == 0 {
		return 0
	}
	for _, c := range p.conns {
		if !c.seenOn(gone) {
			continue
		}
		p.lost(c)
		p.stats.Released++
		released++
		p.drop(c)
	}
	return released
}

// lost counts the unanswered requests of a connection dropped before they
// could end.
func (p *Pairer) lost(c *conn) {
	for i := range c.pending {
		if c.pending[i].expired {
			continue
		}
		if c.pending[i].unparsed {
			p.stats.UnansweredMalformed++
		} else {
			p.stats.EvictedPending++
		}
	}
}

// Expire ends requests older than RequestTimeout at kernel time now with
// Outcome Timeout, and hands the other requests older than OverdueAfter to
// Config.Overdue. Call it periodically (every 250ms gives hung requests a
// verdict within a quarter second of their threshold); it walks every
// tracked connection.
func (p *Pairer) Expire(now uint64) {
	limit := uint64(p.cfg.RequestTimeout)
	overdue := uint64(p.cfg.OverdueAfter)
	idle := uint64(p.cfg.IdleTimeout)
	for k, c := range p.conns {
		if c.live() == 0 && now > c.lastSeen && now-c.lastSeen >= idle {
			p.stats.IdleClosed++
			p.drop(c)
			continue
		}
		for i := range c.pending {
			r := &c.pending[i]
			if r.expired {
				continue
			}
			if now <= r.ts || now-r.ts < limit {
				break // requests queue oldest first
			}
			// Reported now; kept so that its response, if it ever
			// comes, answers it and not the next request.
			r.expired = true
			if r.unparsed {
				p.stats.UnansweredMalformed++
				continue
			}
			p.fill(r, k)
			p.ex.Outcome = Timeout
			p.ex.EndNS = now
			p.stats.Timeouts++
			p.stats.Exchanges++
			p.emit(&p.ex)
		}
		if p.cfg.Overdue == nil {
			continue
		}
		// Requests queue oldest first: stop at the first young one.
		for i := range c.pending {
			r := &c.pending[i]
			if r.expired {
				continue
			}
			if now <= r.ts || now-r.ts < overdue {
				break
			}
			if r.unparsed {
				continue // nothing to judge
			}
			p.fill(r, k)
			p.ex.Outcome = Pending
			p.ex.EndNS = now
			p.stats.Overdue++
			p.cfg.Overdue(&p.ex)
			r.marks = p.ex.Marks
		}
	}
}

func (p *Pairer) fill(r *pending, k connKey) {
	p.ex = Exchange{
		Client: k.client, Server: k.server, Stream: k.stream, PID: k.pid,
		Method: r.method, Target: r.target, Host: r.host, UserAgent: r.ua,
		ReqContentLength: r.cl, RespContentLength: -1,
		StartNS: r.ts, Unparsed: r.unparsed, TargetTruncated: r.truncated, Marks: r.marks,
		Version: r.version, Trace: r.trace, TraceState: r.traceState, RequestIDHash: r.idHash,
	}
}

// get finds the connection and marks it most recently used; with create
// it makes one, evicting the least recently used at capacity.
func (p *Pairer) get(k connKey, create bool) *conn {
	if c := p.conns[k]; c != nil {
		p.lru.moveToFront(c)
		return c
	}
	if !create {
		return nil
	}
	if len(p.conns) >= p.cfg.MaxConns {
		old := p.lru.back()
		p.stats.Evictions++
		p.lost(old)
		p.drop(old)
	}
	var c *conn
	if n := len(p.free); n > 0 {
		c, p.free = p.free[n-1], p.free[:n-1]
	} else {
		c = &conn{}
	}
	c.key = k
	p.conns[k] = c
	p.lru.pushFront(c)
	return c
}

func (p *Pairer) drop(c *conn) {
	delete(p.conns, c.key)
	p.lru.remove(c)
	c.reset()
	// Keep a bounded pool of cleared connections to reuse their slices.
	if len(p.free) < 1024 {
		p.free = append(p.free, c)
	}
}
