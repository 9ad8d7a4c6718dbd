package join

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var (
	cli    = netip.MustParseAddrPort("10.0.0.2:40000")
	cli2   = netip.MustParseAddrPort("10.0.0.3:40001")
	gw     = netip.MustParseAddrPort("10.0.0.1:8080")
	gwOut  = netip.MustParseAddrPort("10.0.1.1:50000")
	gwOut2 = netip.MustParseAddrPort("10.0.1.1:50001")
	be     = netip.MustParseAddrPort("10.0.1.2:9000")
	be2    = netip.MustParseAddrPort("10.0.1.3:9000")
)

const ms = uint64(time.Millisecond)

func rec(id string, head, end uint64) Record {
	return Record{RequestID: id, Client: cli, Local: gw, Upstream: be, HeadMono: head, EndMono: end, Status: 200}
}

func up(id string, from netip.AddrPort, start, end uint64) Leg {
	return Leg{Client: from, Server: be, Start: start, End: end, IDHash: HashID([]byte(id)), Status: 200}
}

// TestJoinSplitsTime: one request; the parts are the intervals between
// the kernel's and the gateway's timestamps and add up to the total.
func TestJoinSplitsTime(t *testing.T) {
	r := rec("a", 1000*ms+200_000, 1300*ms)
	client := []Leg{{Client: cli, Server: gw, Start: 1000 * ms, End: 1250 * ms}}
	upstream := []Leg{up("a", gwOut, 1001*ms, 1249*ms)}
	b, why := Join(&r, client, upstream)
	if why != Joined {
		t.Fatalf("reason %s", ReasonNames[why])
	}
	if b.TotalNS != int64(250*ms) || b.KernelNS != 200_000 || b.BackendNS != int64(248*ms) || b.GatewayNS != int64(2*ms)-200_000 {
		t.Fatalf("total %d kernel %d gateway %d backend %d", b.TotalNS, b.KernelNS, b.GatewayNS, b.BackendNS)
	}
	if b.KernelNS+b.GatewayNS+b.BackendNS != b.TotalNS || b.Attempts != 1 || b.RequestID != "a" {
		t.Fatalf("%+v", b)
	}
}

// TestJoinPicksTheExchangeOpenAtTheHeadRead: three requests on one
// keep-alive connection and their upstream legs on one pooled
// connection; each record gets its own pair.
func TestJoinPicksTheExchangeOpenAtTheHeadRead(t *testing.T) {
	var client, upstream []Leg
	ids := []string{"r1", "r2", "r3"}
	for i, id := range ids {
		base := uint64(i+1) * 1000 * ms
		client = append(client, Leg{Client: cli, Server: gw, Start: base, End: base + uint64(100*(i+1))*ms})
		upstream = append(upstream, up(id, gwOut, base+ms, base+uint64(100*(i+1))*ms-ms))
	}
	for i, id := range ids {
		base := uint64(i+1) * 1000 * ms
		r := rec(id, base+ms/2, base+uint64(100*(i+1))*ms+ms)
		b, why := Join(&r, client, upstream)
		if why != Joined {
			t.Fatalf("%s: reason %s", id, ReasonNames[why])
		}
		if want := int64(100*(i+1))*int64(ms) - 2*int64(ms); b.BackendNS != want || b.ClientStart != base {
			t.Errorf("%s: backend %d want %d, client leg at %d want %d", id, b.BackendNS, want, b.ClientStart, base)
		}
	}
}

// TestJoinUpstreamByRequestID: two requests at the same time on two
// connections to the same backend: the upstream legs are told apart by
// their X-Request-Id, not by time.
func TestJoinUpstreamByRequestID(t *testing.T) {
	client := []Leg{
		{Client: cli, Server: gw, Start: 0, End: 500 * ms},
		{Client: cli2, Server: gw, Start: 0, End: 500 * ms},
	}
	upstream := []Leg{up("slow", gwOut, ms, 400*ms), up("fast", gwOut2, ms, 100*ms)}
	r := rec("fast", ms/2, 500*ms)
	r.Client = cli2
	b, why := Join(&r, client, upstream)
	if why != Joined || b.BackendNS != int64(99*ms) {
		t.Fatalf("reason %s backend %d; want the fast leg (99ms)", ReasonNames[why], b.BackendNS)
	}
}

// TestJoinRetriesTakeTheLastAttempt: two upstream legs with the ID (a
// retry); the one that answered is the later, both are counted.
func TestJoinRetriesTakeTheLastAttempt(t *testing.T) {
	client := []Leg{{Client: cli, Server: gw, Start: 0, End: 300 * ms}}
	upstream := []Leg{up("a", gwOut, ms, 100*ms), up("a", gwOut2, 150*ms, 290*ms)}
	r := rec("a", ms/2, 300*ms)
	b, why := Join(&r, client, upstream)
	if why != Joined || b.Attempts != 2 || b.UpstreamStart != 150*ms || b.BackendNS != int64(140*ms) {
		t.Fatalf("reason %s %+v", ReasonNames[why], b)
	}
}

// TestJoinClientSentTheID: the client's own request carries the same
// X-Request-Id; it is the client leg, never the upstream one.
func TestJoinClientSentTheID(t *testing.T) {
	h := HashID([]byte("a"))
	clientLeg := Leg{Client: cli, Server: gw, Start: 0, End: 300 * ms, IDHash: h}
	clientLeg2 := clientLeg
	clientLeg2.Server = be // same addresses as the upstream, seen from the client: not ours
	r := rec("a", ms/2, 300*ms)
	if _, why := Join(&r, []Leg{clientLeg}, []Leg{clientLeg}); why != NoUpstreamLeg {
		t.Fatalf("the client's leg taken as upstream: %s", ReasonNames[why])
	}
	b, why := Join(&r, []Leg{clientLeg}, []Leg{clientLeg, up("a", gwOut, ms, 200*ms)})
	if why != Joined || b.BackendNS != int64(199*ms) {
		t.Fatalf("reason %s backend %d", ReasonNames[why], b.BackendNS)
	}
}

// TestJoinRefusesWhatItCannotTell: overlapping exchanges on one
// connection (pipelining, HTTP/2 streams) are ambiguous; a leg outside
// the window, to another endpoint or with another ID is not the record's.
func TestJoinRefusesWhatItCannotTell(t *testing.T) {
	r := rec("a", 10*ms, 300*ms)
	overlapping := []Leg{{Client: cli, Server: gw, Start: 0, End: 200 * ms}, {Client: cli, Server: gw, Start: ms, End: 250 * ms}}
	if _, why := Join(&r, overlapping, []Leg{up("a", gwOut, 20*ms, 100*ms)}); why != Ambiguous {
		t.Errorf("overlapping client legs: %s, want ambiguous", ReasonNames[why])
	}
	client := []Leg{{Client: cli, Server: gw, Start: 0, End: 200 * ms}}
	for name, u := range map[string]Leg{
		"before the head read":      up("a", gwOut, 5*ms, 100*ms),
		"after the client leg":      up("a", gwOut, 20*ms, 210*ms),
		"another endpoint":          {Client: gwOut, Server: be2, Start: 20 * ms, End: 100 * ms, IDHash: HashID([]byte("a"))},
		"another request ID":        up("b", gwOut, 20*ms, 100*ms),
		"another connection's head": {Client: cli2, Server: gw, Start: 20 * ms, End: 100 * ms, IDHash: HashID([]byte("a"))},
	} {
		if _, why := Join(&r, client, []Leg{u}); why != NoUpstreamLeg {
			t.Errorf("%s: %s, want no_upstream_leg", name, ReasonNames[why])
		}
	}
	other := r
	other.Client = cli2
	if _, why := Join(&other, client, nil); why != NoClientLeg {
		t.Errorf("another client connection: %s, want no_client_leg", ReasonNames[why])
	}
	late := r
	late.HeadMono = 201 * ms
	if _, why := Join(&late, client, nil); why != NoClientLeg {
		t.Errorf("head read after the leg ended: %s, want no_client_leg", ReasonNames[why])
	}
}

// TestJoinHTTP2ByStream: three streams open at once on one h2c
// connection, each forwarded with its own ID and answered after its own
// time: a record naming its stream takes that stream's exchange (its
// backend phase is its own), a record naming a stream no exchange has
// is not joined, and a record naming none stays ambiguous.
func TestJoinHTTP2ByStream(t *testing.T) {
	var client, upstream []Leg
	ends := map[uint32]uint64{1: 300 * ms, 3: 100 * ms, 5: 500 * ms}
	for sid, end := range ends {
		client = append(client, Leg{Client: cli, Server: gw, Stream: sid, Start: uint64(sid) * ms, End: end})
		upstream = append(upstream, up(fmt.Sprint("s", sid), gwOut, uint64(sid)*ms+ms, end-ms))
	}
	for sid, end := range ends {
		r := rec(fmt.Sprint("s", sid), uint64(sid)*ms+ms/2, end+ms)
		r.Stream = sid
		b, why := Join(&r, client, upstream)
		if why != Joined {
			t.Fatalf("stream %d: %s", sid, ReasonNames[why])
		}
		if want := int64(end - uint64(sid)*ms - 2*ms); b.ClientStart != uint64(sid)*ms || b.ClientEnd != end || b.BackendNS != want {
			t.Errorf("stream %d: client leg %d..%d backend %d, want %d..%d and %d", sid, b.ClientStart, b.ClientEnd, b.BackendNS, uint64(sid)*ms, end, want)
		}
	}
	missing := rec("s7", 4*ms, 600*ms)
	missing.Stream = 7
	if _, why := Join(&missing, client, upstream); why != NoClientLeg {
		t.Errorf("stream without an exchange: %s, want no_client_leg", ReasonNames[why])
	}
	unnamed := rec("s1", 6*ms, 301*ms) // all three streams open
	if _, why := Join(&unnamed, client, upstream); why != Ambiguous {
		t.Errorf("record naming no stream: %s, want ambiguous", ReasonNames[why])
	}
}

// TestJoinGatewayAnswered: a request the gateway answered itself (no
// route) has no upstream and no backend time.
func TestJoinGatewayAnswered(t *testing.T) {
	r := rec("a", ms, 3*ms)
	r.Upstream = netip.AddrPort{}
	b, why := Join(&r, []Leg{{Client: cli, Server: gw, Start: 0, End: 2 * ms}}, nil)
	if why != Joined || b.BackendNS != 0 || b.KernelNS != int64(ms) || b.GatewayNS != int64(ms) {
		t.Fatalf("reason %s %+v", ReasonNames[why], b)
	}
}

func TestHashID(t *testing.T) {
	if HashID(nil) != 0 || HashID([]byte("a")) == 0 || HashID([]byte("a")) == HashID([]byte("b")) {
		t.Fatal("HashID: 0 only without an ID, distinct IDs distinct")
	}
}

// TestJoinAbsorbsClockTieError: the gateway's head read, converted to
// CLOCK_MONOTONIC, may seem a few microseconds after the upstream
// request left (a pooled connection, a short gateway part); within Skew
// the record joins, clamped, its parts non-negative and adding up. Past
// Skew it does not.
func TestJoinAbsorbsClockTieError(t *testing.T) {
	client := []Leg{{Client: cli, Server: gw, Start: 0, End: 300 * ms}}
	upstream := []Leg{up("a", gwOut, 40_000, 299*ms)}
	r := rec("a", 40_000+Skew/2, 300*ms)
	b, why := Join(&r, client, upstream)
	if why != Joined || b.KernelNS != 40_000 || b.GatewayNS != int64(ms) || b.KernelNS+b.GatewayNS+b.BackendNS != b.TotalNS {
		t.Fatalf("reason %s %+v", ReasonNames[why], b)
	}
	r.HeadMono = 40_000 + 2*Skew
	if _, why := Join(&r, client, upstream); why != NoUpstreamLeg {
		t.Fatalf("head read %d ns after the request left: %s, want no_upstream_leg", 2*Skew, ReasonNames[why])
	}
}
