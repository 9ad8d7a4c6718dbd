package proxy

import (
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/h2"
	"github.com/false-systems/rauta/internal/reqtiming"
)

// Request timings: a bounded ring of the last requests' timing records,
// served on the admin port (/debug/requests) so that the eBPF observer can
// join the gateway's view of a request with the kernel's view of its two
// legs (docs/observer.md, "The gateway's view and the kernel's"). A record
// holds no header value but the X-Request-Id, and no secret.
//
// The write is one atomic add (the sequence number) and a copy into its
// slot under the slot's own mutex: no allocation, and requests share no
// lock; only a reader and a writer 'ring size' requests apart meet on a
// slot.

// DefaultRequestTimings is the ring's size when Options.RequestTimings is
// 0: at 10k req/s the last ~0.4 s, enough for an observer polling every
// 250 ms; about 300 bytes a slot (1.2 MiB).
const DefaultRequestTimings = 4096

type timingSlot struct {
	mu       sync.Mutex
	seq      uint64 // 0: never written
	idLen    uint8
	id       [maxRequestIDLen]byte
	traceID  [16]byte
	hasTrace bool
	status   uint16
	// gateway, route and upstream are configuration strings, which live
	// as long as the configuration: kept without copying.
	gateway, route, upstream string
	client, local            netip.AddrPort
	stream                   uint32
	head, end                uint64
	start                    time.Time
}

type requestTimings struct {
	next  atomic.Uint64
	slots []timingSlot
	// base and baseMono tie Go's monotonic clock to CLOCK_MONOTONIC:
	// mono(t) = baseMono + t.Sub(base), both read once.
	base     time.Time
	baseMono uint64
}

// newRequestTimings makes a ring of n slots; nil when n < 0 (off).
func newRequestTimings(n int) *requestTimings {
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = DefaultRequestTimings
	}
	r := &requestTimings{slots: make([]timingSlot, n)}
	r.base, r.baseMono = tieClocks()
	return r
}

// tieClocks reads CLOCK_MONOTONIC between two readings of Go's clock, a
// few times, and keeps the tightest bracket's midpoint: a preemption
// between two reads would otherwise shift every record by its length
// (seen: ~1 ms under load, which made the upstream request look older
// than the head read). The error left is half the bracket, well under a
// microsecond.
func tieClocks() (time.Time, uint64) {
	var base time.Time
	var baseMono uint64
	best := time.Duration(-1)
	for range 8 {
		var ts unix.Timespec
		t0 := time.Now()
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for this clock id
		d := time.Since(t0)
		if best < 0 || d < best {
			best, base, baseMono = d, t0.Add(d/2), uint64(ts.Nano())
		}
	}
	return base, baseMono
}

func (r *requestTimings) mono(t time.Time) uint64 {
	return r.baseMono + uint64(max(t.Sub(r.base), 0))
}

// put records a finished request; start is when its head had been read.
func (r *requestTimings) put(gateway, route string, ex *exchange, status int, start, end time.Time) {
	seq := r.next.Add(1)
	s := &r.slots[seq%uint64(len(r.slots))]
	s.mu.Lock()
	s.seq = seq
	s.idLen = uint8(copy(s.id[:], ex.requestID))
	s.traceID, s.hasTrace = ex.trace.traceID, ex.trace.valid
	s.status = uint16(status)
	s.gateway, s.route, s.upstream = gateway, route, ex.upstream
	s.client, s.local, s.stream = ex.client, ex.local, ex.stream
	s.head, s.end, s.start = r.mono(start), r.mono(end), start
	s.mu.Unlock()
}

// read copies the slot holding seq; false when it was overwritten.
func (r *requestTimings) read(seq uint64, out *reqtiming.Record) bool {
	s := &r.slots[seq%uint64(len(r.slots))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq != seq {
		return false
	}
	*out = reqtiming.Record{
		Seq: seq, RequestID: string(s.id[:s.idLen]), Gateway: s.gateway, Route: s.route, Status: int(s.status),
		Client: s.client, Local: s.local, Stream: s.stream, HeadMono: s.head, EndMono: s.end, Start: s.start.UTC(),
		DurationMS: float64(s.end-s.head) / 1e6,
	}
	if s.hasTrace {
		out.TraceID = hex.EncodeToString(s.traceID[:])
	}
	out.Upstream, _ = netip.ParseAddrPort(s.upstream)
	return true
}

// page returns up to limit records after the cursor, oldest first.
func (r *requestTimings) page(after uint64, limit int) reqtiming.Page {
	newest := r.next.Load()
	p := reqtiming.Page{Next: newest, Records: []reqtiming.Record{}}
	from := after + 1
	if n := uint64(len(r.slots)); newest > n && from <= newest-n {
		from = newest - n + 1
	}
	for seq := from; seq <= newest && len(p.Records) < limit; seq++ {
		var t reqtiming.Record
		if r.read(seq, &t) {
			p.Records = append(p.Records, t)
		}
	}
	return p
}

// find returns the newest record of request ID id.
func (r *requestTimings) find(id string) (reqtiming.Record, bool) {
	newest := r.next.Load()
	for seq := newest; seq > 0 && newest-seq < uint64(len(r.slots)); seq-- {
		var t reqtiming.Record
		if r.read(seq, &t) && t.RequestID == id {
			return t, true
		}
	}
	return reqtiming.Record{}, false
}

// RequestTimings returns up to limit timing records written after the
// cursor after (0: the oldest held), for the admin port.
func (s *Server) RequestTimings(after uint64, limit int) reqtiming.Page {
	if s.timings == nil {
		return reqtiming.Page{Records: []reqtiming.Record{}}
	}
	return s.timings.page(after, limit)
}

// RequestTiming returns the newest timing record of request ID id.
func (s *Server) RequestTiming(id string) (reqtiming.Record, bool) {
	if s.timings == nil {
		return reqtiming.Record{}, false
	}
	return s.timings.find(id)
}

// recordTiming is record's hook (handler.go).
func (s *Server) recordTiming(lc *listenerConfig, route string, ex *exchange, status int, start, end time.Time) {
	if s.timings != nil {
		s.timings.put(lc.gateway, route, ex, status, start, end)
	}
}

// setRequestAddrs takes the client connection's addresses for the timing
// record on net/http's path and the HTTP/2 server's, which also names the
// request's stream (the HTTP/1.1 engine reads them once per connection:
// newH1Conn).
func (s *Server) setRequestAddrs(ex *exchange, r *http.Request) {
	if s.timings == nil {
		return
	}
	ex.client, _ = netip.ParseAddrPort(r.RemoteAddr)
	ctx := r.Context()
	if a, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok {
		ex.local = addrPortOf(a)
	}
	if r.ProtoMajor == 2 {
		ex.stream = h2.StreamID(ctx)
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
