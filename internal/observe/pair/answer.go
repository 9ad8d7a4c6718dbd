package pair

// Which request does a response answer? HTTP/1.x answers in order, so
// first-in first-out is right as long as every response is seen. One that
// is not (several responses in one segment, a ring-buffer drop, a HEAD
// response read as having a body) shifted every later exchange of the
// connection onto the wrong request. TCP sequence and acknowledgment
// numbers say where each message lies in its stream, which lets the pairer
// check the order instead of trusting it:
//
//   - A response with ack A was sent after the server had received every
//     byte before A, so it answers a pending request that starts before A
//     (a candidate); later requests cannot be its.
//   - Contiguous: when the response starts exactly where the last response
//     seen ended (its length was known), no response was missed in
//     between, and it answers the oldest pending request (pipelining,
//     several responses in one segment), unless a request before that one
//     is known to be missing (the request before it ended earlier than it
//     starts: a record lost), which the response may answer.
//   - Otherwise (the last response's length was unknown, this is the first
//     response seen, or bytes are missing), the request's own ack decides:
//     a request sent with ack equal to the response's start was sent when
//     the client had received every earlier response byte and none of this
//     response; the oldest such candidate is the answer. That is certain
//     when it is the oldest pending request (keep-alive after a chunked
//     response, a fresh connection), or when bytes before the response are
//     known to be missing (the requests before it lost their responses in
//     the gap, and are dropped and counted as unpaired); and never for a
//     request with a missing request before it.
//   - Anything else could be either of two histories (a response missed, or
//     requests pipelined while responses were arriving): the response and
//     its candidate requests are dropped and counted, never reported with a
//     status that may belong to another request.
//
// Segments without ACK (only a SYN carrying data) are paired in order.

// Seg locates a message in its TCP stream: the sequence number of its
// first byte and the acknowledgment number of its segment (HasAck: the
// ACK flag was set, as on every segment after the handshake).
type Seg struct {
	Seq, Ack uint32
	HasAck   bool
	// Ifindex is the interface the segment was captured on (0: unknown).
	// The connection remembers it so that it can be forgotten when that
	// interface is deleted (ForgetInterfaces).
	Ifindex uint32
	// Stream and PID are 0 for TCP segments; for plaintext read or
	// written through a TLS library they name the TLS connection (see
	// Exchange.Stream), and Seq and Ack are plaintext offsets.
	Stream uint64
	PID    uint32
}

// before reports a < b in sequence space (RFC 9293 3.4, modulo 2^32).
func before(a, b uint32) bool { return int32(a-b) < 0 }

// verdict is answer's decision for one response.
type verdict uint8

const (
	answerNone      verdict = iota // no candidate: the request was never seen
	answerFound                    // pending[idx] is the answer
	answerAmbiguous                // cannot be told: drop candidates [0, idx)
)

// answer finds the request a response starting at s answers: pending[idx]
// with answerFound (requests before idx got no captured response), or the
// number of candidates to drop with answerAmbiguous.
func (c *conn) answer(s Seg) (idx int, v verdict) {
	if len(c.pending) == 0 {
		return 0, answerNone
	}
	if !s.HasAck {
		return 0, answerFound
	}
	k := 0 // candidates: requests the server had received
	for k < len(c.pending) && before(c.pending[k].seq, s.Ack) {
		k++
	}
	if k == 0 {
		return 0, answerNone
	}
	if c.synced && c.haveRespEnd && s.Seq == c.respEnd && !c.pending[0].gapBefore {
		return 0, answerFound
	}
	for i := 0; i < k; i++ {
		r := &c.pending[i]
		if !r.hasAck || r.ack != s.Seq {
			continue
		}
		if !r.gapBefore && (i == 0 || (c.haveRespEnd && before(c.respEnd, s.Seq))) {
			return i, answerFound
		}
		break
	}
	return k, answerAmbiguous
}
