// Package reqtiming holds the request timing record: what the gateway
// knows of one request (internal/proxy keeps a ring of them and serves it
// on its admin port) and what the observer joins with the kernel's view
// of the request's two legs (internal/observe/join). One type for both
// sides, so that the JSON between them cannot drift.
package reqtiming

import (
	"net/netip"
	"time"
)

// Record is one request's timing record. Times ending in Mono are
// CLOCK_MONOTONIC nanoseconds, the clock of the kernel's packet
// timestamps (bpf_ktime_get_ns), so no wall-clock conversion enters a
// comparison. It holds no header value but the X-Request-Id.
type Record struct {
	Seq       uint64 `json:"seq"`
	RequestID string `json:"request_id"`
	TraceID   string `json:"trace_id,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	Route     string `json:"route,omitempty"`
	Status    int    `json:"status"`
	// Client is the client's address, Local the gateway's end of the
	// client's connection (the listener's address as the client dialled
	// it): the connection's 4-tuple as the kernel sees it.
	Client netip.AddrPort `json:"client"`
	Local  netip.AddrPort `json:"local"`
	// Stream is the request's HTTP/2 stream identifier on that
	// connection, 0 for HTTP/1.x (and for HTTP/2 connections upgraded
	// from HTTP/1.1, whose server does not tell it): with several streams
	// open on one connection, it is what names the request's exchange.
	Stream uint32 `json:"stream,omitempty"`
	// Upstream is the endpoint that served last; invalid when the gateway
	// answered itself (404, a filter's redirect).
	Upstream netip.AddrPort `json:"upstream"`
	// HeadMono: the gateway had read the request head; EndMono: it had
	// written the response (the access log's end).
	HeadMono uint64 `json:"head_mono_ns"`
	EndMono  uint64 `json:"end_mono_ns"`
	// Start is HeadMono in wall-clock time, DurationMS the time from it
	// to EndMono, for people reading the record.
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
}

// Page is the admin port's answer to /debug/requests?after=N: the records
// after the cursor N, oldest first, and the newest sequence number
// written (a reader that is up to date holds it; a Next below the cursor
// means the gateway restarted).
type Page struct {
	Next    uint64   `json:"next"`
	Records []Record `json:"records"`
}
