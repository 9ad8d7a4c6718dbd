package h2parse

import (
	"container/list"
	"net/netip"
	"time"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// Limits bound what the tracker keeps. Zero fields take the defaults.
type Limits struct {
	// MaxConns h2c connections are tracked (default 4096), least recently
	// seen evicted first (their pending streams counted in Dropped).
	// Each costs two HPACK tables (MaxTable) and decoder buffers.
	MaxConns int
	// MaxStreams pending streams per connection (default 256; Go's
	// server allows 250 concurrent streams, gRPC-Go's 100 by default
	// via its client). Requests beyond it are counted, not tracked.
	MaxStreams int
	// MaxTable is the largest HPACK dynamic table an encoder may announce
	// (default 65536 bytes; the protocol's default is 4096).
	MaxTable uint32
	// MaxString bounds one header name or value in the decoder (default
	// 16384 bytes).
	MaxString int
	// MaxHeaderBlock bounds one header block, HEADERS plus CONTINUATION
	// fragments (default 65536 bytes).
	MaxHeaderBlock int
	// RequestTimeout ends a stream without a response as pair.Timeout
	// (default 30s, the HTTP/1.x pairer's).
	RequestTimeout time.Duration
	// OverdueAfter and Overdue: as pair.Config's, for streams without a
	// response.
	OverdueAfter time.Duration
	Overdue      func(*pair.Exchange)
	// IdleTimeout forgets a connection with no segment for this long
	// (default 60s); a stream still waiting is counted in Dropped.
	IdleTimeout time.Duration
}

func (l *Limits) withDefaults() {
	if l.MaxConns <= 0 {
		l.MaxConns = 4096
	}
	if l.MaxStreams <= 0 {
		l.MaxStreams = 256
	}
	if l.MaxTable == 0 {
		l.MaxTable = 65536
	}
	if l.MaxString <= 0 {
		l.MaxString = 16384
	}
	if l.MaxHeaderBlock <= 0 {
		l.MaxHeaderBlock = 65536
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = 30 * time.Second
	}
	if l.OverdueAfter <= 0 {
		l.OverdueAfter = 50 * time.Millisecond
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 60 * time.Second
	}
}

// Stats count what the tracker saw and what it could not report.
type Stats struct {
	Conns              uint64 // connections seen from their preface
	Tracked            int    // connections tracked now
	Requests           uint64 // request header blocks tracked
	Exchanges          uint64 // streams reported (complete, reset or timeout)
	Desyncs            [desyncReasons]uint64
	Dropped            uint64 // pending streams dropped: desync, eviction, idle, close, malformed response
	Refused            uint64 // streams above a GOAWAY's last stream id (not processed by the server)
	StreamOverflows    uint64 // requests beyond MaxStreams on a connection
	UnmatchedResponses uint64 // response header blocks on a stream not tracked
	UnknownSegments    uint64 // segments of connections not tracked (preface not seen by userspace, or evicted)
	Duplicates         uint64 // segments seen before (several hooks, retransmissions)
	Evictions          uint64 // connections evicted by MaxConns
	Pushes             uint64 // PUSH_PROMISE blocks (decoded, not reported)
	// LateServerStarts: connections whose server direction started at
	// its first segment seen, past a SETTINGS sent before the preface
	// was seen (conn.segment).
	LateServerStarts uint64
}

type connKey struct{ client, server netip.AddrPort }

// Tracker follows h2c connections and emits an exchange per stream. One
// goroutine drives it.
type Tracker struct {
	lim   Limits
	emit  func(*pair.Exchange)
	conns map[connKey]*list.Element // of *conn
	lru   *list.List                // front: most recently seen
	stats Stats
	ex    pair.Exchange // reused for every emit
}

// New returns a tracker calling emit for every finished stream; the
// *Exchange is reused after emit returns.
func New(lim Limits, emit func(*pair.Exchange)) *Tracker {
	lim.withDefaults()
	return &Tracker{lim: lim, emit: emit, conns: make(map[connKey]*list.Element), lru: list.New()}
}

// Segment is one captured segment of an h2c connection.
type Segment struct {
	TS         uint64
	Src, Dst   netip.AddrPort
	Seq, Ack   uint32
	HasAck     bool
	FIN        bool
	PayloadLen uint32
	Data       []byte // captured prefix of the payload
}

// Segment consumes a segment of an h2c connection.
func (t *Tracker) Segment(s *Segment) {
	c, d := t.lookup(s.Src, s.Dst)
	if isPreface(s.Data) && (c == nil || d != dirClient || c.clientStart != s.Seq) {
		// A new connection (or a new one on a reused 4-tuple). Without
		// an acknowledgment the server's start is unknown.
		if c != nil {
			t.drop(c)
		}
		if !s.HasAck {
			t.stats.Desyncs[DesyncGap]++
			return
		}
		c, d = newConn(t, s.Src, s.Dst, s.Seq, s.Ack, s.TS), dirClient
		t.stats.Conns++
		t.add(c)
	}
	if c == nil {
		t.stats.UnknownSegments++
		return
	}
	c.lastSeen = s.TS
	t.lru.MoveToFront(t.conns[connKey{c.client, c.server}])
	c.segment(d, s.Seq, s.PayloadLen, s.Data, s.TS)
	if s.FIN {
		c.fin[d] = true
		if c.fin[dirClient] && c.fin[dirServer] {
			t.drop(c)
		}
	}
}

// isPreface: the segment starts with the client preface, or with as much
// of it as the segment holds (at least the 8 bytes the kernel matched).
// The rest, if the preface is split, is taken as consumed: were it not
// the preface, the frames after it would not parse.
func isPreface(b []byte) bool {
	n := min(len(b), len(Preface))
	return n >= 8 && string(b[:n]) == Preface[:n]
}

// Reset ends a connection on a TCP RST: its pending streams end as
// pair.Reset, as HTTP/1.x requests pending on a reset connection do.
func (t *Tracker) Reset(ts uint64, src, dst netip.AddrPort) {
	c, _ := t.lookup(src, dst)
	if c == nil {
		return
	}
	for _, st := range c.streams {
		c.finish(st, pair.Reset, ts)
	}
	t.remove(c)
}

// Expire ends streams without a response after RequestTimeout (as
// pair.Timeout), hands younger ones past OverdueAfter to Overdue, and
// forgets idle connections.
func (t *Tracker) Expire(now uint64) {
	timeout, overdue, idle := uint64(t.lim.RequestTimeout), uint64(t.lim.OverdueAfter), uint64(t.lim.IdleTimeout)
	for e := t.lru.Back(); e != nil; {
		c := e.Value.(*conn)
		prev := e.Prev()
		for _, st := range c.streams {
			if st.gotResp || now < st.reqTS {
				continue
			}
			switch age := now - st.reqTS; {
			case age >= timeout:
				c.finish(st, pair.Timeout, now)
			case age >= overdue && t.lim.Overdue != nil:
				t.overdue(c, st, now)
			}
		}
		if now > c.lastSeen && now-c.lastSeen >= idle {
			t.drop(c)
		}
		e = prev
	}
}

func (t *Tracker) overdue(c *conn, st *stream, now uint64) {
	ex := &t.ex
	*ex = pair.Exchange{
		Client: c.client, Server: c.server, Method: st.method, Target: st.path, Host: st.authority,
		UserAgent: st.ua, ReqContentLength: st.reqLen, RespContentLength: -1, Outcome: pair.Pending,
		StartNS: st.reqTS, EndNS: now, Marks: st.marks, Version: "2", Trace: st.trace, GRPC: st.grpc,
	}
	t.lim.Overdue(ex)
	st.marks = ex.Marks
}

// Stats returns the counters.
func (t *Tracker) Stats() Stats {
	s := t.stats
	s.Tracked = len(t.conns)
	return s
}

func (t *Tracker) lookup(src, dst netip.AddrPort) (*conn, int) {
	if e, ok := t.conns[connKey{src, dst}]; ok {
		return e.Value.(*conn), dirClient
	}
	if e, ok := t.conns[connKey{dst, src}]; ok {
		return e.Value.(*conn), dirServer
	}
	return nil, 0
}

func (t *Tracker) add(c *conn) {
	if t.lru.Len() >= t.lim.MaxConns {
		old := t.lru.Back().Value.(*conn)
		t.stats.Evictions++
		t.drop(old)
	}
	t.conns[connKey{c.client, c.server}] = t.lru.PushFront(c)
}

// drop forgets a connection, counting the streams it still held.
func (t *Tracker) drop(c *conn) {
	t.stats.Dropped += uint64(len(c.streams))
	t.remove(c)
}

func (t *Tracker) remove(c *conn) {
	k := connKey{c.client, c.server}
	if e, ok := t.conns[k]; ok {
		t.lru.Remove(e)
		delete(t.conns, k)
	}
}
