package h2

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
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	if l.MaxQueuedControlFrames <= 0 {
		l.MaxQueuedControlFrames = 1000
	}
	return l
}

// abuse is why a connection is closed for passing a limit; it goes to the
// client as the GOAWAY ENHANCE_YOUR_CALM's debug data.
type abuse string

func (a abuse) Error() string { return "h2: " + string(a) }
