package h2parse

import (
	"fmt"
	"math/rand"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/httpparse"
	"github.com/false-systems/rauta/internal/observe/pair"
)

// conversation builds a connection where the client opens n streams
// (ids 1, 3, ...) in batches of up to batch, and the server answers
// each batch in a shuffled order with statusFor(i), a DATA frame and,
// for every third stream, a gRPC trailer. It returns the segments in
// delivery order, cut at random sizes up to maxSeg, with timestamps.
func conversation(t testing.TB, rng *rand.Rand, n, batch, maxSeg int) []seg {
	c, s := newSide(true), newSide(false)
	var out []seg
	var ts uint64
	flush := func(sd *side, client bool, from *int) {
		b := sd.buf.Bytes()
		if client && *from == 0 {
			// The preface goes in one write, so in one segment.
			ts++
			out = append(out, seg{client: true, data: b[:len(Preface)], ts: ts})
			*from = len(Preface)
		}
		for _, sg := range cutRandom(rng, b[*from:], maxSeg, client) {
			ts++
			sg.off += *from
			sg.ts = ts
			out = append(out, sg)
		}
		*from = len(b)
	}
	var cOff, sOff int
	for i := 0; i < n; {
		var ids []int
		for ; i < n && len(ids) < batch; i++ {
			ids = append(ids, i)
			c.headers(t, uint32(2*i+1), true, 7*(i%3), reqFields(i)...)
		}
		flush(c, true, &cOff)
		rng.Shuffle(len(ids), func(a, b int) { ids[a], ids[b] = ids[b], ids[a] })
		for _, id := range ids {
			st := uint32(2*id + 1)
			if id%3 == 0 {
				s.headers(t, st, false, 0, ":status", "200", "content-type", "application/grpc")
				s.data(t, st, false, 20)
				s.headers(t, st, true, 0, "grpc-status", strconv.Itoa(id%17), "grpc-message", "m")
				continue
			}
			s.headers(t, st, false, 0, ":status", strconv.Itoa(statusFor(id)), "content-type", "text/plain", "x-same", "repeated-value-for-the-dynamic-table")
			s.data(t, st, true, 10+id%50)
		}
		flush(s, false, &sOff)
	}
	return out
}

// check asserts that every exchange is the one its path names: status
// (or gRPC status) as the server answered that id. It returns how many
// were wrong.
func check(t testing.TB, exs []pair.Exchange) int {
	t.Helper()
	wrong := 0
	for _, ex := range exs {
		id, err := strconv.Atoi(strings.TrimPrefix(ex.Target, "/item/"))
		if err != nil || ex.Method != "POST" || ex.Host != "svc.example:8080" || ex.Version != "2" || ex.Outcome != pair.Complete {
			t.Errorf("exchange %+v", ex)
			wrong++
			continue
		}
		if id%3 == 0 {
			if !ex.GRPC || ex.Status != 200 || int(ex.GRPCStatus) != id%17 {
				t.Errorf("stream %d: grpc %v status %d grpc-status %d, want grpc 200 %d", id, ex.GRPC, ex.Status, ex.GRPCStatus, id%17)
				wrong++
			}
		} else if ex.GRPC || ex.Status != statusFor(id) {
			t.Errorf("stream %d: status %d grpc %v, want %d", id, ex.Status, ex.GRPC, statusFor(id))
			wrong++
		}
		if ex.EndNS <= ex.StartNS {
			t.Errorf("stream %d: response at %d, request at %d", id, ex.EndNS, ex.StartNS)
		}
		// conversation sends /item/{id} on stream 2*id+1.
		if ex.H2Stream != uint32(2*id+1) {
			t.Errorf("/item/%d: stream %d, want %d", id, ex.H2Stream, 2*id+1)
			wrong++
		}
	}
	return wrong
}

func TestConcurrentStreamsPairExactly(t *testing.T) {
	for _, maxSeg := range []int{1, 7, 100, 1400, 1 << 20} {
		t.Run(strconv.Itoa(maxSeg), func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(maxSeg)))
			tr, exs := collect(Limits{})
			feed(tr, conversation(t, rng, 300, 50, maxSeg))
			if len(*exs) != 300 {
				t.Fatalf("%d exchanges, want 300 (stats %+v)", len(*exs), tr.Stats())
			}
			if check(t, *exs) != 0 {
				t.Fatal("mis-paired")
			}
			st := tr.Stats()
			if st.Desyncs != [desyncReasons]uint64{} || st.Dropped != 0 || st.Conns != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestDuplicatesAreDropped: every segment seen twice (two hooks) and some
// retransmitted with an overlap give the same exchanges once.
func TestDuplicatesAreDropped(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	segs := conversation(t, rng, 60, 20, 300)
	var twice []seg
	for i, s := range segs {
		twice = append(twice, s, s)
		if i%5 == 0 && len(s.data) > 2 {
			// A retransmission that overlaps: the segment's second
			// half and beyond.
			h := len(s.data) / 2
			twice = append(twice, seg{client: s.client, off: s.off + h, data: s.data[h:], ts: s.ts})
		}
	}
	tr, exs := collect(Limits{})
	feed(tr, twice)
	if len(*exs) != 60 || check(t, *exs) != 0 {
		t.Fatalf("%d exchanges, stats %+v", len(*exs), tr.Stats())
	}
	if tr.Stats().Duplicates < uint64(len(segs)) {
		t.Fatalf("duplicates %d, want at least %d", tr.Stats().Duplicates, len(segs))
	}
}

// TestRandomLossNeverMisPairs: segments lost at random (a ring drop) and
// segments cut by the capture window: every exchange reported is exact,
// and what is lost is counted.
func TestRandomLossNeverMisPairs(t *testing.T) {
	rng := rand.New(rand.NewSource(16))
	var reported, wrong, desyncs int
	const conns = 200
	for c := 0; c < conns; c++ {
		segs := conversation(t, rng, 40, 8, 1400)
		var kept []seg
		for _, s := range segs {
			switch r := rng.Float64(); {
			case r < 0.01:
				continue // lost
			case r < 0.03 && len(s.data) > 10:
				// cut by the capture window: the length says more
				// than the bytes hold.
				s.data = s.data[:rng.Intn(len(s.data))]
			}
			kept = append(kept, s)
		}
		tr, exs := collect(Limits{})
		feedCut(tr, kept, segs)
		reported += len(*exs)
		wrong += check(t, *exs)
		for _, n := range tr.Stats().Desyncs {
			desyncs += int(n)
		}
	}
	t.Logf("%d connections x 40 streams: %d reported, %d mis-paired, %d desynchronised", conns, reported, wrong, desyncs)
	if wrong != 0 {
		t.Fatalf("%d mis-paired", wrong)
	}
	if reported == 0 || desyncs == 0 {
		t.Fatalf("reported %d, desyncs %d: the loss did not happen or nothing survived", reported, desyncs)
	}
}

// feedCut is feed with each segment's PayloadLen taken from the
// original segments (same direction and offset), so that a shortened
// data slice reads as a capture cut.
func feedCut(tr *Tracker, kept, orig []seg) {
	length := map[[2]int]int{}
	for _, s := range orig {
		d := 0
		if s.client {
			d = 1
		}
		length[[2]int{d, s.off}] = len(s.data)
	}
	for _, s := range kept {
		d := 0
		if s.client {
			d = 1
		}
		sg := Segment{TS: s.ts, HasAck: true, PayloadLen: uint32(length[[2]int{d, s.off}]), Data: s.data}
		if s.client {
			sg.Src, sg.Dst, sg.Seq, sg.Ack = cli, srv, cliISN+uint32(s.off), srvISN
		} else {
			sg.Src, sg.Dst, sg.Seq, sg.Ack = srv, cli, srvISN+uint32(s.off), cliISN
		}
		tr.Segment(&sg)
	}
}

// TestCutInsideDataIsTolerated: a segment cut by the capture window inside
// a DATA frame that runs to its end loses nothing the parser needs; one
// cut inside a header block desynchronises the connection.
func TestCutInsideDataIsTolerated(t *testing.T) {
	c, s := newSide(true), newSide(false)
	c.headers(t, 1, true, 0, reqFields(1)...)
	c.headers(t, 3, true, 0, reqFields(2)...)
	s.headers(t, 1, false, 0, ":status", "200")
	s.data(t, 1, true, 6000)
	s.headers(t, 3, false, 0, ":status", "300")
	s.data(t, 3, true, 10)
	cb, sb := c.buf.Bytes(), s.buf.Bytes()
	// The server's first segment runs to the end of stream 1's DATA
	// frame: everything before stream 3's HEADERS. Only its first 4096
	// bytes are captured.
	split := headersFrameAt(t, sb, 3)
	tr, exs := collect(Limits{})
	feed(tr, []seg{{client: true, data: cb, ts: 1}})
	tr.Segment(&Segment{TS: 2, Src: srv, Dst: cli, Seq: srvISN, Ack: cliISN, HasAck: true, PayloadLen: uint32(split), Data: sb[:4096]})
	tr.Segment(&Segment{TS: 3, Src: srv, Dst: cli, Seq: srvISN + uint32(split), Ack: cliISN, HasAck: true, PayloadLen: uint32(len(sb) - split), Data: sb[split:]})
	if len(*exs) != 2 || (*exs)[0].Status != 200 || (*exs)[1].Status != 300 || (*exs)[1].Target != "/item/2" {
		t.Fatalf("exchanges %+v stats %+v", *exs, tr.Stats())
	}

	// The same, cut inside stream 3's header block.
	tr, exs = collect(Limits{})
	feed(tr, []seg{{client: true, data: cb, ts: 1}})
	tr.Segment(&Segment{TS: 2, Src: srv, Dst: cli, Seq: srvISN, Ack: cliISN, HasAck: true, PayloadLen: uint32(len(sb)), Data: sb[:split+10]})
	if len(*exs) != 1 || tr.Stats().Desyncs[DesyncTruncated] != 1 || tr.Stats().Dropped != 1 {
		t.Fatalf("exchanges %+v stats %+v", *exs, tr.Stats())
	}
}

// headersFrameAt finds the offset of the HEADERS frame of stream id.
func headersFrameAt(t testing.TB, b []byte, id uint32) int {
	t.Helper()
	off := 0
	for off+9 <= len(b) {
		n := int(b[off])<<16 | int(b[off+1])<<8 | int(b[off+2])
		sid := uint32(b[off+5]&0x7f)<<24 | uint32(b[off+6])<<16 | uint32(b[off+7])<<8 | uint32(b[off+8])
		if b[off+3] == frameHeaders && sid == id {
			return off
		}
		off += 9 + n
	}
	t.Fatalf("no HEADERS frame of stream %d", id)
	return 0
}

// TestServerStartMissed: the server's first bytes (its SETTINGS, sent as
// it accepted) went by before the preface was seen. When its first
// segment seen starts with a control frame on stream 0, its direction
// starts there (no header block can have come before: no request had
// reached the server); when it starts with anything else, the
// connection is desynchronised, not decoded from a guess.
func TestServerStartMissed(t *testing.T) {
	c, s := newSide(true), newSide(false)
	c.headers(t, 1, true, 0, reqFields(1)...)
	first := s.buf.Len()
	if err := s.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	s.headers(t, 1, true, 0, ":status", "200")
	sb := s.buf.Bytes()
	tr, exs := collect(Limits{})
	feed(tr, []seg{{client: true, data: c.buf.Bytes(), ts: 1}, {off: first, data: sb[first:], ts: 2}})
	if len(*exs) != 1 || (*exs)[0].Status != 200 || tr.Stats().LateServerStarts != 1 || tr.Stats().Desyncs != [desyncReasons]uint64{} {
		t.Fatalf("exchanges %+v stats %+v", *exs, tr.Stats())
	}

	// The first server segment seen starts with the response HEADERS.
	hdr := first + 9
	tr, exs = collect(Limits{})
	feed(tr, []seg{{client: true, data: c.buf.Bytes(), ts: 1}, {off: hdr, data: sb[hdr:], ts: 2}})
	if len(*exs) != 0 || tr.Stats().Desyncs[DesyncGap] != 1 || tr.Stats().Dropped != 1 {
		t.Fatalf("exchanges %+v stats %+v", *exs, tr.Stats())
	}
}

// TestHPACKNeedsEveryBlock: a lost segment holding a header block that
// added to the dynamic table would make later blocks decode to other
// values; the gap desynchronises the connection instead.
func TestHPACKNeedsEveryBlock(t *testing.T) {
	c, s := newSide(true), newSide(false)
	c.headers(t, 1, true, 0, reqFields(1, "x-id", "one")...)
	mid := c.buf.Len()
	c.headers(t, 3, true, 0, reqFields(2, "x-id", "two")...)
	end := c.buf.Len()
	c.headers(t, 5, true, 0, reqFields(3, "x-id", "two")...) // indexed from stream 3's block
	s.headers(t, 1, true, 0, ":status", "200")
	s.headers(t, 3, true, 0, ":status", "201")
	s.headers(t, 5, true, 0, ":status", "202")
	cb := c.buf.Bytes()
	tr, exs := collect(Limits{})
	feed(tr, []seg{{client: true, data: cb[:mid], ts: 1}, {client: true, off: end, data: cb[end:], ts: 3}, {data: s.buf.Bytes(), ts: 4}})
	if len(*exs) != 0 || tr.Stats().Desyncs[DesyncGap] != 1 {
		t.Fatalf("exchanges %+v stats %+v", *exs, tr.Stats())
	}
	if tr.Stats().Dropped != 1 {
		t.Fatalf("dropped %d, want stream 1", tr.Stats().Dropped)
	}
}

func TestResetsTimeoutsGoAway(t *testing.T) {
	c, s := newSide(true), newSide(false)
	for i := 1; i <= 4; i++ {
		c.headers(t, uint32(2*i-1), true, 0, reqFields(i, "content-type", "application/grpc")...)
	}
	if err := s.fr.WriteRSTStream(1, 2); err != nil { // stream 1 reset by the server
		t.Fatal(err)
	}
	s.headers(t, 3, true, 0, ":status", "200", "content-type", "application/grpc", "grpc-status", "14") // trailers-only UNAVAILABLE
	if err := s.fr.WriteGoAway(5, 0, nil); err != nil {                                                 // stream 7 not processed
		t.Fatal(err)
	}
	tr, exs := collect(Limits{RequestTimeout: time.Second})
	feed(tr, []seg{{client: true, data: c.buf.Bytes(), ts: 10}, {data: s.buf.Bytes(), ts: 20}})
	if len(*exs) != 2 {
		t.Fatalf("exchanges %+v", *exs)
	}
	if r := (*exs)[0]; r.Outcome != pair.Reset || r.Target != "/item/1" || r.EndNS != 20 {
		t.Fatalf("reset stream: %+v", r)
	}
	if r := (*exs)[1]; r.Outcome != pair.Complete || !r.GRPC || r.GRPCStatus != 14 || !r.ServerError() {
		t.Fatalf("trailers-only: %+v", r)
	}
	if tr.Stats().Refused != 1 {
		t.Fatalf("refused %d, want 1 (stream 7)", tr.Stats().Refused)
	}
	var overdue []string
	tr.lim.Overdue = func(ex *pair.Exchange) { overdue = append(overdue, ex.Target); ex.Marks |= 1 }
	tr.Expire(10 + uint64(100*time.Millisecond))
	if len(overdue) != 1 || overdue[0] != "/item/3" {
		t.Fatalf("overdue %v, want stream 5 (/item/3)", overdue)
	}
	tr.Expire(10 + uint64(time.Second))
	if len(*exs) != 3 || (*exs)[2].Outcome != pair.Timeout || (*exs)[2].Marks != 1 {
		t.Fatalf("timeout: %+v", *exs)
	}
	// A TCP RST ends the rest as resets.
	off := c.buf.Len()
	c.headers(t, 9, true, 0, reqFields(9)...)
	feed(tr, []seg{{client: true, off: off, data: c.buf.Bytes()[off:], ts: 30}})
	tr.Reset(40, srv, cli)
	if len(*exs) != 4 || (*exs)[3].Outcome != pair.Reset || (*exs)[3].Target != "/item/9" || tr.Stats().Tracked != 0 {
		t.Fatalf("after RST: %+v, tracked %d", *exs, tr.Stats().Tracked)
	}
}

func TestBounds(t *testing.T) {
	c, s := newSide(true), newSide(false)
	for i := 0; i < 5; i++ {
		c.headers(t, uint32(2*i+1), true, 0, reqFields(i)...)
	}
	for i := 0; i < 5; i++ {
		s.headers(t, uint32(2*i+1), true, 0, ":status", "204")
	}
	tr, exs := collect(Limits{MaxStreams: 3})
	feed(tr, []seg{{client: true, data: c.buf.Bytes(), ts: 1}, {data: s.buf.Bytes(), ts: 2}})
	if st := tr.Stats(); len(*exs) != 3 || st.StreamOverflows != 2 || st.UnmatchedResponses != 2 {
		t.Fatalf("%d exchanges, stats %+v", len(*exs), st)
	}

	// A header block over MaxHeaderBlock.
	c = newSide(true)
	c.headers(t, 1, true, 0, reqFields(1, "cookie", strings.Repeat("c", 3000))...)
	tr, _ = collect(Limits{MaxHeaderBlock: 1000})
	feed(tr, []seg{{client: true, data: c.buf.Bytes(), ts: 1}})
	if tr.Stats().Desyncs[DesyncLimit] != 1 {
		t.Fatalf("stats %+v", tr.Stats())
	}

	// MaxConns: the least recently seen connection is evicted.
	tr, _ = collect(Limits{MaxConns: 2})
	for i := 0; i < 3; i++ {
		p := []byte(Preface)
		tr.Segment(&Segment{TS: uint64(i), Src: netip.AddrPortFrom(cli.Addr(), cli.Port()+uint16(i)), Dst: srv, Seq: 1, Ack: 1, HasAck: true, PayloadLen: uint32(len(p)), Data: p})
	}
	if st := tr.Stats(); st.Tracked != 2 || st.Evictions != 1 || st.Conns != 3 {
		t.Fatalf("stats %+v", st)
	}
	tr.Expire(uint64(time.Hour))
	if tr.Stats().Tracked != 0 {
		t.Fatalf("idle connections kept: %+v", tr.Stats())
	}
}

func TestGarbageIsProtocolDesync(t *testing.T) {
	tr, exs := collect(Limits{})
	b := []byte(Preface + "\x00\x00\x04\x09\x04\x00\x00\x00\x01abcd") // CONTINUATION without HEADERS
	feed(tr, []seg{{client: true, data: b}})
	if len(*exs) != 0 || tr.Stats().Desyncs[DesyncProtocol] != 1 {
		t.Fatalf("stats %+v", tr.Stats())
	}
	tr, _ = collect(Limits{})
	b = []byte(Preface + "\x00\x00\x04\x01\x04\x00\x00\x00\x01\xff\xff\xff\xff") // HEADERS with an invalid HPACK index
	feed(tr, []seg{{client: true, data: b}})
	if tr.Stats().Desyncs[DesyncHPACK] != 1 {
		t.Fatalf("stats %+v", tr.Stats())
	}
}

func TestTraceparentFromHeaders(t *testing.T) {
	c, s := newSide(true), newSide(false)
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	c.headers(t, 1, true, 0, reqFields(1, "traceparent", tp, "tracestate", "k=v")...)
	s.headers(t, 1, true, 0, ":status", "200")
	tr, exs := collect(Limits{})
	feed(tr, []seg{{client: true, data: c.buf.Bytes(), ts: 1}, {data: s.buf.Bytes(), ts: 2}})
	if len(*exs) != 1 || !(*exs)[0].Trace.Valid() || (*exs)[0].TraceState != "k=v" || fmt.Sprintf("%x", (*exs)[0].Trace.TraceID) != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("%+v", *exs)
	}
}

// TestRequestIDFromHeaders: a stream's one x-request-id is hashed as the
// HTTP/1.x parser hashes it (the gateway's join finds an upstream leg to
// an h2c backend by it); a stream with two, or none, carries no hash.
func TestRequestIDFromHeaders(t *testing.T) {
	c, s := newSide(true), newSide(false)
	c.headers(t, 1, true, 0, reqFields(1, "x-request-id", "5f0c2a9e-1")...)
	c.headers(t, 3, true, 0, reqFields(2, "x-request-id", "a", "x-request-id", "b")...)
	c.headers(t, 5, true, 0, reqFields(3)...)
	for _, id := range []uint32{1, 3, 5} {
		s.headers(t, id, true, 0, ":status", "200")
	}
	tr, exs := collect(Limits{})
	feed(tr, []seg{{client: true, data: c.buf.Bytes(), ts: 1}, {data: s.buf.Bytes(), ts: 2}})
	want := map[uint32]uint64{1: httpparse.HashRequestID("5f0c2a9e-1"), 3: 0, 5: 0}
	if len(*exs) != 3 {
		t.Fatalf("%d exchanges, want 3", len(*exs))
	}
	for _, ex := range *exs {
		if ex.RequestIDHash != want[ex.H2Stream] {
			t.Errorf("stream %d: hash %x, want %x", ex.H2Stream, ex.RequestIDHash, want[ex.H2Stream])
		}
	}
}
