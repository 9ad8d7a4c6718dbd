package h2parse

import (
	"errors"
	"net/netip"

	"github.com/false-systems/rauta/internal/observe/pair"
	"github.com/false-systems/rauta/internal/tracecontext"
)

// Desync reasons, the index of Stats.Desyncs.
const (
	DesyncGap       = iota // bytes of a direction missing (ring drop, reordering, a missed first server segment)
	DesyncTruncated        // a segment cut by the capture window inside bytes the parser needs
	DesyncProtocol         // the bytes are not a valid frame sequence
	DesyncHPACK            // a header block that does not decode
	DesyncLimit            // a header block over Limits.MaxHeaderBlock or a string over Limits.MaxString
	desyncReasons
)

// DesyncReasonNames label Stats.Desyncs.
var DesyncReasonNames = [desyncReasons]string{"gap", "truncated", "protocol", "hpack", "limit"}

const (
	dirClient = 0 // client -> server
	dirServer = 1
)

// stream is a request waiting for (the end of) its response.
type stream struct {
	id                          uint32
	method, path, authority, ua string
	scheme                      string
	reqTS                       uint64
	reqLen, respLen             int64
	trace                       tracecontext.Parent
	traceState                  string
	grpc                        bool
	gotResp                     bool
	status                      int
	respTS                      uint64
	grpcStatus                  int // -1 until trailers (or a trailers-only response) say
	marks                       uint8
	idHash                      uint64 // x-request-id (Block.RequestIDHash)
}

// conn is one h2c connection seen from its client preface.
type conn struct {
	t              *Tracker
	client, server netip.AddrPort
	clientStart    uint32 // sequence number of the preface
	next           [2]uint32
	fr             [2]*framer
	fin            [2]bool
	serverSeen     bool // a server segment with payload was taken
	desync         bool
	lastSeen       uint64
	streams        map[uint32]*stream
	dir            int // direction being fed: which side the sink hears
}

func newConn(t *Tracker, client, server netip.AddrPort, seq, serverStart uint32, ts uint64) *conn {
	c := &conn{t: t, client: client, server: server, clientStart: seq, lastSeen: ts, streams: make(map[uint32]*stream)}
	// The client's bytes start with the preface, which is not a frame.
	c.next[dirClient] = seq + uint32(len(Preface))
	// The server's start is what the preface segment acknowledged: the
	// server cannot have sent a header block before the client's first
	// request, so its HPACK state there is empty. A server segment past
	// that point first means bytes were missed (a gap).
	c.next[dirServer] = serverStart
	c.fr[dirClient] = newFramer(&t.lim, c)
	c.fr[dirServer] = newFramer(&t.lim, c)
	return c
}

// segment feeds one captured segment of direction d; payloadLen is the
// segment's length, data the captured prefix (already past the preface
// for the preface segment: skip says how much of it).
func (c *conn) segment(d int, seq, payloadLen uint32, data []byte, ts uint64) {
	if payloadLen == 0 || c.desync {
		return
	}
	diff := int32(seq - c.next[d])
	if diff > 0 && d == dirServer && !c.serverSeen && controlStart(data) {
		// The server's first bytes (its SETTINGS, sent as it accepted)
		// went by before the preface was seen. They cannot hold a
		// header block (no request had reached the server), so its
		// table is still empty: its direction starts here. The kernel
		// applies the same rule (bpf/observer.c, h2_control_start).
		c.next[d], diff = seq, 0
		c.t.stats.LateServerStarts++
	}
	if d == dirServer {
		c.serverSeen = true
	}
	if diff > 0 {
		c.fail(DesyncGap)
		return
	}
	end := seq + payloadLen
	if int32(end-c.next[d]) <= 0 {
		c.t.stats.Duplicates++
		return
	}
	// Bytes before next were consumed already (a retransmission that
	// overlaps, or the preface).
	skip := uint32(-diff)
	c.next[d] = end
	c.dir = d
	fr := c.fr[d]
	if uint32(len(data)) > payloadLen {
		data = data[:payloadLen] // a record never stands for less than it holds; be safe
	}
	captured := uint32(len(data))
	if skip < captured {
		if err := fr.feed(data[skip:], ts); err != nil {
			c.failErr(err)
			return
		}
	} else {
		captured = skip
	}
	if !fr.skipMissing(payloadLen - captured) {
		c.fail(DesyncTruncated)
	}
}

// controlStart: b starts with a connection-level control frame (SETTINGS,
// PING or WINDOW_UPDATE on stream 0, of its valid length).
func controlStart(b []byte) bool {
	if len(b) < frameHeaderLen || b[5]|b[6]|b[7]|b[8] != 0 {
		return false
	}
	n := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	switch b[3] {
	case frameSettings:
		return n%6 == 0 && n <= 16384
	case framePing:
		return n == 8
	case frameWindowUpdate:
		return n == 4
	}
	return false
}

func (c *conn) failErr(err error) {
	switch {
	case errors.Is(err, errHPACK):
		c.fail(DesyncHPACK)
	case errors.Is(err, errLimit):
		c.fail(DesyncLimit)
	default:
		c.fail(DesyncProtocol)
	}
}

// fail marks the connection desynchronised: its pending streams are
// dropped and counted, and it reports nothing more.
func (c *conn) fail(reason int) {
	c.desync = true
	c.t.stats.Desyncs[reason]++
	c.t.stats.Dropped += uint64(len(c.streams))
	clear(c.streams)
	// The framers and their tables are not needed any more.
	c.fr = [2]*framer{}
}

func (c *conn) headers(b *Block) {
	if b.Push {
		c.t.stats.Pushes++
		return
	}
	st := c.streams[b.Stream]
	if c.dir == dirClient {
		if st != nil || b.Stream%2 == 0 || b.Method == "" {
			return // request trailers, or not a request
		}
		if len(c.streams) >= c.t.lim.MaxStreams {
			c.t.stats.StreamOverflows++
			return
		}
		st = &stream{
			id: b.Stream, method: b.Method, path: b.Path, authority: b.Authority, scheme: b.Scheme,
			ua: b.UserAgent, reqTS: b.TS, reqLen: b.ContentLength, respLen: -1,
			grpc: isGRPC(b.ContentType), grpcStatus: -1, idHash: b.RequestIDHash,
		}
		if p, ok := tracecontext.Parse(b.TraceParent); ok {
			st.trace = p
			if p.Sampled() {
				st.traceState = b.TraceState
			}
		}
		c.streams[b.Stream] = st
		c.t.stats.Requests++
		return
	}
	if st == nil {
		c.t.stats.UnmatchedResponses++
		return
	}
	if !st.gotResp {
		if b.Status >= 100 && b.Status < 200 && !b.EndStream {
			return // informational; the final response follows
		}
		if b.Status == 0 {
			// A response without :status is malformed: the stream
			// is not reported.
			delete(c.streams, st.id)
			c.t.stats.Dropped++
			return
		}
		st.gotResp, st.status, st.respTS, st.respLen = true, b.Status, b.TS, b.ContentLength
		st.grpc = st.grpc || isGRPC(b.ContentType)
	}
	if b.GRPCStatus >= 0 {
		st.grpcStatus = b.GRPCStatus
	}
	if b.EndStream {
		c.finish(st, pair.Complete, b.TS)
	}
}

func (c *conn) endStream(id uint32, ts uint64) {
	if c.dir != dirServer {
		return
	}
	if st := c.streams[id]; st != nil && st.gotResp {
		c.finish(st, pair.Complete, ts)
	}
}

func (c *conn) rstStream(id uint32, ts uint64) {
	if st := c.streams[id]; st != nil {
		c.finish(st, pair.Reset, ts)
	}
}

// goAway from the server: client streams above lastStream were not
// processed and may be retried on another connection, so they are not
// exchanges; they are dropped and counted.
func (c *conn) goAway(lastStream uint32, _ uint64) {
	if c.dir != dirServer {
		return
	}
	for id := range c.streams {
		if id > lastStream {
			delete(c.streams, id)
			c.t.stats.Refused++
		}
	}
}

// finish reports a stream and forgets it.
func (c *conn) finish(st *stream, outcome pair.Outcome, ts uint64) {
	delete(c.streams, st.id)
	ex := &c.t.ex
	*ex = pair.Exchange{
		Client: c.client, Server: c.server,
		Method: st.method, Target: st.path, Host: st.authority, UserAgent: st.ua,
		ReqContentLength: st.reqLen, RespContentLength: st.respLen,
		Outcome: outcome, StartNS: st.reqTS, EndNS: ts, H2Stream: st.id, RequestIDHash: st.idHash,
		Marks: st.marks, Version: "2", Trace: st.trace, TraceState: st.traceState,
		TargetTruncated: len(st.path) == maxPathLen,
	}
	if outcome == pair.Complete {
		// Latency ends at the response's HEADERS, as HTTP/1.x's ends at
		// the status line: the time to the first byte of the answer,
		// not the transfer of the body (or a gRPC stream's life).
		ex.Status, ex.EndNS = st.status, st.respTS
		if st.grpc {
			ex.GRPC = true
			ex.GRPCStatus = grpcStatusOf(st)
		}
	} else {
		// A reset or timed-out call has no grpc-status; its outcome
		// says what happened.
		ex.GRPC = st.grpc
	}
	c.t.stats.Exchanges++
	c.t.emit(ex)
}

// grpcStatusOf: grpc-status from the trailers; without it, what a gRPC
// client concludes (grpc/doc/http-grpc-status-mapping.md): the HTTP status
// mapped, and INTERNAL for a 200 that ended without trailers.
func grpcStatusOf(st *stream) uint8 {
	if st.grpcStatus >= 0 {
		return uint8(st.grpcStatus)
	}
	switch st.status {
	case 200:
		return pair.GRPCInternal
	case 400:
		return pair.GRPCInternal
	case 401:
		return 16 // UNAUTHENTICATED
	case 403:
		return 7 // PERMISSION_DENIED
	case 404:
		return 12 // UNIMPLEMENTED
	case 429, 502, 503, 504:
		return pair.GRPCUnavailable
	}
	return pair.GRPCUnknown
}
