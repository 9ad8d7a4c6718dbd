package h2

import (
	"time"

	"golang.org/x/net/http2"
)

// Limits bound what one client can make the server queue, count and wait
// for on a connection: HTTP/2 lets a client ask for work with frames that
// cost it nothing (an empty SETTINGS frame asks for an ACK, a malformed
// HEADERS for a RST_STREAM), so each kind is capped, and the client that
// passes a cap loses the connection with GOAWAY ENHANCE_YOUR_CALM. The
// zero value of each field means its default, which is at least as strict
// as Envoy's and nginx's; docs/http2.md lists them with the CVE each
// answers.
type Limits struct {
	// MaxQueuedControlFrames bounds the frames the server has queued in
	// reply to the client and not yet written (SETTINGS and PING acks,
	// RST_STREAM, WINDOW_UPDATE): a client that sends them and never
	// reads would otherwise grow the queue without bound (CVE-2019-9512,
	// CVE-2019-9515). 0 means 1000 (Envoy's max_outbound_control_frames).
	MaxQueuedControlFrames int
	// ResetBudget bounds the streams that end in a reset on one
	// connection: each RST_STREAM the server sends for a client's error
	// (a malformed or refused stream) and each RST_STREAM the client
	// sends takes one from the budget, each stream that completes
	// without a reset gives one back, and the whole budget refills over
	// resetRefill. A client past it is flooding the server with streams
	// that cost work and return nothing (CVE-2019-9514, CVE-2023-44487).
	// 0 means 200.
	ResetBudget int
	// MaxHeaderFields bounds the fields of a request's header block
	// (pseudo-header fields aside); a request with more is answered 431.
	// The list's size is bounded by Server.MaxHeaderBytes. 0 means 100
	// (Envoy's max_headers_count).
	MaxHeaderFields int
	// MaxContinuationFrames bounds the CONTINUATION frames of one header
	// block; past it the connection ends (CVE-2023-45288: x/net bounds a
	// block's bytes, not its frames). A 64 KiB block needs 4 at the 16 KiB
	// frame size. 0 means 24.
	MaxContinuationFrames int
	// MaxEmptyFrames bounds the consecutive DATA, HEADERS and
	// CONTINUATION frames with an empty payload (padding aside) that do
	// not end a stream:
	// they carry nothing, so a client sends them only to make the server
	// read and dispatch frames for free (CVE-2019-9518). A frame with a
	// payload, or with END_STREAM, starts the count again. 0 means 1
	// (Envoy's max_consecutive_inbound_frames_with_empty_payload).
	MaxEmptyFrames int
	// MaxPriorityFramesPerStream bounds the PRIORITY frames of a
	// connection: more than this many per stream the client opened, plus
	// this many, ends it. RAUTA ignores priorities, so they are work for
	// nothing (CVE-2019-9513 class). 0 means 100 (Envoy's
	// max_inbound_priority_frames_per_stream).
	MaxPriorityFramesPerStream int
	// MaxWindowUpdatesPerDataFrame bounds the WINDOW_UPDATE frames of a
	// connection by the DATA frames the server sent: a client may send
	// 5 + 2 * (streams opened + this many per DATA frame sent), current
	// Envoy's formula (older releases allowed 1 + ...). A client
	// that grants window while the server sends nothing is asking for
	// free work (CVE-2019-9518 class). 0 means 10 (Envoy's
	// max_inbound_window_update_frames_per_data_frame_sent).
	MaxWindowUpdatesPerDataFrame int
}

// resetRefill is the time in which an exhausted ResetBudget refills
// completely: a connection may sustain ResetBudget/10 resets a second
// (20 by default) beyond one per completed stream.
const resetRefill = 10 * time.Second

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	if l.MaxQueuedControlFrames <= 0 {
		l.MaxQueuedControlFrames = 1000
	}
	if l.ResetBudget <= 0 {
		l.ResetBudget = 200
	}
	if l.MaxHeaderFields <= 0 {
		l.MaxHeaderFields = 100
	}
	if l.MaxContinuationFrames <= 0 {
		l.MaxContinuationFrames = 24
	}
	if l.MaxEmptyFrames <= 0 {
		l.MaxEmptyFrames = 1
	}
	if l.MaxPriorityFramesPerStream <= 0 {
		l.MaxPriorityFramesPerStream = 100
	}
	if l.MaxWindowUpdatesPerDataFrame <= 0 {
		l.MaxWindowUpdatesPerDataFrame = 10
	}
	return l
}

// abuse is why a connection is closed for passing a limit; it goes to the
// client as the GOAWAY ENHANCE_YOUR_CALM's debug data.
type abuse string

func (a abuse) Error() string { return "h2: " + string(a) }

// resetBudget is a connection's ResetBudget: a token bucket refilled by
// completed streams and over time. Guarded by c.mu.
type resetBudget struct {
	tokens  int
	max     int
	refills time.Time // when tokens were last refilled over time
}

func (b *resetBudget) init(max int) {
	b.tokens, b.max, b.refills = max, max, time.Now()
}

// take counts a reset and reports whether the budget still holds. The
// clock is read only here, on resets.
func (b *resetBudget) take() bool {
	now := time.Now()
	if add := int(now.Sub(b.refills) * time.Duration(b.max) / resetRefill); add > 0 {
		b.tokens = min(b.max, b.tokens+add)
		b.refills = now
	}
	b.tokens--
	return b.tokens >= 0
}

// give returns a token for a stream that completed without a reset.
func (b *resetBudget) give() {
	if b.tokens < b.max {
		b.tokens++
	}
}

// noOpCounts are the counts of frames that ask nothing of the server
// (Limits.MaxEmptyFrames, MaxPriorityFramesPerStream,
// MaxWindowUpdatesPerDataFrame), Envoy's flood counters. emptyRun is the
// reader's own; the rest are guarded by c.mu.
type noOpCounts struct {
	emptyRun      int   // consecutive empty frames
	priority      int64 // PRIORITY frames
	windowUpdates int64 // WINDOW_UPDATE frames
	streams       int64 // streams the client opened
	dataSent      int64 // DATA frames the server queued
}

// countEmpty counts f in the run of empty frames and reports a client
// past Limits.MaxEmptyFrames. Padding does not count as payload: a frame
// of padding only is as empty, and its window comes back at once. Only
// the reader calls it.
func (c *conn) countEmpty(f http2.Frame) error {
	var n int
	var end bool
	switch f := f.(type) {
	case *http2.DataFrame:
		n, end = len(f.Data()), f.StreamEnded()
	case *http2.HeadersFrame:
		n, end = len(f.HeaderBlockFragment()), f.StreamEnded()
	case *http2.ContinuationFrame: // no END_STREAM of its own
		n = len(f.HeaderBlockFragment())
	default:
		return nil
	}
	if n > 0 || end {
		c.noOp.emptyRun = 0
		return nil
	}
	if c.noOp.emptyRun++; c.noOp.emptyRun > c.lim.MaxEmptyFrames {
		return abuse("too many empty frames")
	}
	return nil
}

// overNoOp reports a client past the PRIORITY and WINDOW_UPDATE counts,
// with Envoy's formulas. Callers hold c.mu.
func (c *conn) overNoOp() error {
	n := &c.noOp
	if n.priority > int64(c.lim.MaxPriorityFramesPerStream)*(1+n.streams) {
		return abuse("too many PRIORITY frames")
	}
	if n.windowUpdates > 5+2*(n.streams+int64(c.lim.MaxWindowUpdatesPerDataFrame)*n.dataSent) {
		return abuse("too many WINDOW_UPDATE frames")
	}
	return nil
}
