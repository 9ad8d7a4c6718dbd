// Package join puts the gateway's view and the kernel's view of one
// request together: the gateway's timing record (its admin port's
// /debug/requests) names the client connection, the time it read the
// request head and the X-Request-Id it sent the backend; the observer's
// exchanges give the kernel timestamps of the client's leg (client ->
// gateway) and of the upstream leg (gateway -> backend). Join is the pure
// function; Index keeps recent legs, Joiner runs it on the pipeline
// goroutine and Poller fetches the records.
package join

import (
	"net/netip"

	"github.com/false-systems/rauta/internal/observe/httpparse"
	"github.com/false-systems/rauta/internal/reqtiming"
)

// Record is the gateway's timing record of one request, as its admin port
// serves it.
type Record = reqtiming.Record

// Leg is one exchange the kernel saw: the first request segment and the
// status line crossing an observed interface.
type Leg struct {
	Client, Server netip.AddrPort
	// Stream is the HTTP/2 stream identifier, 0 for HTTP/1.x.
	Stream     uint32
	Start, End uint64 // CLOCK_MONOTONIC
	// IDHash is HashID of the request's X-Request-Id, 0 without one.
	IDHash uint64
	Status int
}

// HashID is httpparse.HashRequestID, the hash the observer keeps of
// each request's X-Request-Id.
func HashID(id []byte) uint64 { return httpparse.HashRequestID(id) }

// Breakdown is one request's time split in three, each from one clock:
// the parts add up to Total exactly.
//
//	client leg  |C.Start ........................................ C.End|
//	gateway         |HeadMono      |U.Start ...... U.End|
//	            kernel |  gateway   |     backend        |  gateway   |
type Breakdown struct {
	Record
	// TotalNS: the client's first request segment in, the gateway's
	// status line out, at the gateway's interface.
	TotalNS int64 `json:"total_ns"`
	// KernelNS: the request waited in the gateway's node (socket queue,
	// wakeup, scheduling) before the gateway read its head.
	KernelNS int64 `json:"kernel_ns"`
	// GatewayNS: the gateway's own time, from the head read to the
	// request leaving for the backend and from the backend's status line
	// arriving to the gateway's leaving; it includes the kernel's send
	// and receive paths of those three crossings.
	GatewayNS int64 `json:"gateway_ns"`
	// BackendNS: the gateway's request out to the backend's status line
	// in, on the wire (the backend and the network behind the
	// interface); 0 when the gateway answered itself.
	BackendNS int64 `json:"backend_ns"`
	// Attempts: upstream legs the request made (retries), the last one
	// timed in BackendNS.
	Attempts int `json:"attempts"`
	// ClientLeg and UpstreamLeg are the kernel's timestamps.
	ClientStart   uint64 `json:"client_start_mono_ns"`
	ClientEnd     uint64 `json:"client_end_mono_ns"`
	UpstreamStart uint64 `json:"upstream_start_mono_ns,omitempty"`
	UpstreamEnd   uint64 `json:"upstream_end_mono_ns,omitempty"`
}

// Reason says why a record was not joined (yet).
type Reason uint8

const (
	Joined Reason = iota
	// NoClientLeg: no exchange of the client's connection spans the
	// gateway's head read (not captured yet, or not observed).
	NoClientLeg
	// NoUpstreamLeg: the gateway forwarded it, but no exchange carrying
	// its X-Request-Id to that endpoint lies inside the client's leg.
	NoUpstreamLeg
	// Ambiguous: several exchanges of the client's connection span the
	// head read (pipelining; HTTP/2 streams when the record names no
	// stream); never guessed.
	Ambiguous
	numReasons
)

// ReasonNames are the label values of the reasons that keep a record from
// being joined.
var ReasonNames = [numReasons]string{"joined", "no_client_leg", "no_upstream_leg", "ambiguous"}

// Skew is how far the gateway's head read may seem to lie outside the
// kernel's legs: the gateway ties Go's clock to CLOCK_MONOTONIC once at
// start, within a fraction of a microsecond (internal/proxy,
// tieClocks); the margin keeps a request whose gateway part is that
// short from being refused. The breakdown clamps the head read into its
// legs, so the parts stay non-negative and add up.
const Skew = 50 * 1000 // ns

// Join finds the record's client leg among client (exchanges of any
// connection; only the record's is looked at) and its upstream leg among
// upstream, and splits the time. It is a pure function of its inputs.
//
// The client leg is the exchange on the record's connection (client and
// local address) that was open when the gateway read the head: Start <=
// HeadMono <= End. On an HTTP/1.1 connection exchanges follow each other,
// so at most one qualifies; several (pipelined requests) make the record
// Ambiguous. On HTTP/2, streams overlap: a record that names its stream
// takes only that stream's exchange (a stream identifier is never reused
// on a connection, so the time window only keeps a later connection on
// the same 4-tuple apart); one that names none (a gateway that does not
// tell it) is judged by the time window alone, as HTTP/1.1.
//
// The upstream leg carries the record's X-Request-Id, goes to the
// record's endpoint, and lies between the head read and the client leg's
// end; with retries, the last such leg is the one that answered.
func Join(rec *Record, client, upstream []Leg) (Breakdown, Reason) {
	var c *Leg
	n := 0
	for i := range client {
		l := &client[i]
		if l.Client != rec.Client || l.Server != rec.Local || l.Start > rec.HeadMono+Skew || l.End+Skew < rec.HeadMono ||
			(rec.Stream != 0 && l.Stream != rec.Stream) {
			continue
		}
		n++
		c = l
	}
	switch {
	case n == 0:
		return Breakdown{}, NoClientLeg
	case n > 1:
		return Breakdown{}, Ambiguous
	}
	b := Breakdown{Record: *rec, ClientStart: c.Start, ClientEnd: c.End, TotalNS: int64(c.End - c.Start)}
	head := min(max(rec.HeadMono, c.Start), c.End)
	if rec.Upstream.IsValid() {
		h := HashID([]byte(rec.RequestID))
		var u *Leg
		for i := range upstream {
			l := &upstream[i]
			if l.IDHash != h || l.Server != rec.Upstream || l.Start+Skew < rec.HeadMono || l.Start < c.Start || l.End > c.End || l.End < l.Start {
				continue
			}
			if l.Client == rec.Client && l.Server == rec.Local {
				continue // the client's own leg, when it sent the ID
			}
			b.Attempts++
			if u == nil || l.Start > u.Start {
				u = l
			}
		}
		if u == nil {
			return Breakdown{}, NoUpstreamLeg
		}
		b.UpstreamStart, b.UpstreamEnd = u.Start, u.End
		b.BackendNS = int64(u.End - u.Start)
		head = min(head, u.Start)
	}
	// Never negative: C.Start <= head <= U.Start <= U.End <= C.End.
	b.KernelNS = int64(head - c.Start)
	b.GatewayNS = b.TotalNS - b.KernelNS - b.BackendNS
	return b, Joined
}
