package h2client

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"slices"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/h1"
)

// maxInterim bounds the 1xx responses a stream takes before its final one.
const maxInterim = 8

// readLoop reads the backend's frames until the connection ends.
func (cc *conn) readLoop() {
	cc.fail(cc.readFrames())
}

func (cc *conn) readFrames() error {
	first := true
	for {
		f, err := cc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed head (the decoder kept its state): that
				// stream fails, the connection goes on.
				cc.resetStream(se.StreamID, se.Code, fmt.Errorf("h2client: malformed response: %w", err))
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return cc.connError(http2.ErrCode(ce), err.Error())
			}
			return err
		}
		if first {
			// RFC 9113 3.4: the server's preface is a SETTINGS frame.
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				return cc.connError(http2.ErrCodeProtocol, "backend did not start with SETTINGS")
			}
			first = false
		}
		if err := cc.handle(f); err != nil {
			if errors.Is(err, errIdleStream) {
				return cc.connError(http2.ErrCodeProtocol, fmt.Sprintf("%v (stream %d)", err, f.Header().StreamID))
			}
			return err
		}
	}
}

func (cc *conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.HeadersFrame, *http2.ContinuationFrame:
		done, err := cc.readHeaderFrame(f)
		if done && err == nil {
			err = cc.onHeaders(&cc.hb)
		}
		return err
	case *http2.DataFrame:
		return cc.onData(f)
	case *http2.RSTStreamFrame:
		return cc.onReset(f)
	case *http2.SettingsFrame:
		return cc.onSettings(f)
	case *http2.WindowUpdateFrame:
		return cc.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			data := f.Data
			cc.writeFrame(func() error { return cc.fr.WritePing(true, data) })
		}
	case *http2.GoAwayFrame:
		cc.onGoAway(f)
	case *http2.PushPromiseFrame:
		// SETTINGS_ENABLE_PUSH is 0 (RFC 9113 8.4).
		return cc.connError(http2.ErrCodeProtocol, "PUSH_PROMISE with push disabled")
	}
	return nil
}

// resetStream fails stream id with err and resets it with code.
func (cc *conn) resetStream(id uint32, code http2.ErrCode, err error) {
	s, _ := cc.lookup(id)
	if s == nil {
		cc.writeFrame(func() error { return cc.fr.WriteRSTStream(id, code) })
		return
	}
	cc.abort(s, err, code, true)
}

// onHeaders takes a response head, an interim (1xx) one, or trailers.
func (cc *conn) onHeaders(f *headBlock) error {
	s, err := cc.lookup(f.id)
	if s == nil {
		return err // closed: the decoder kept its state, nothing else to do
	}
	if f.invalid != nil {
		cc.abort(s, fmt.Errorf("h2client: malformed response: %w", f.invalid), http2.ErrCodeProtocol, true)
		return nil //nolint:nilerr // a malformed head fails its stream, not the connection
	}
	if f.tooLarge {
		cc.abort(s, fmt.Errorf("h2client: response head larger than %d bytes", cc.t.o.MaxResponseHeaderBytes), http2.ErrCodeCancel, true)
		return nil
	}
	if s.resp != nil {
		return cc.onTrailers(s, f)
	}
	for _, pf := range f.pseudo() {
		if pf.Name != ":status" {
			cc.abort(s, fmt.Errorf("h2client: malformed response: pseudo-header %s", pf.Name), http2.ErrCodeProtocol, true)
			return nil
		}
	}
	status := f.status()
	code, ok := parseStatus(status)
	if !ok {
		cc.abort(s, fmt.Errorf("h2client: malformed response: :status %q", status), http2.ErrCodeProtocol, true)
		return nil
	}
	if code < 200 {
		s.interim++
		if code == http.StatusSwitchingProtocols || f.endStream || s.interim > maxInterim {
			cc.abort(s, fmt.Errorf("h2client: malformed response: interim %d", code), http2.ErrCodeProtocol, true)
		}
		return nil
	}
	var h http.Header
	var cl int64
	if s.listed {
		s.fields = fieldList(f.regular())
		cl, ok = listedLength(s.fields)
	} else {
		h = cc.header(f.regular())
		cl, ok = contentLength(h["Content-Length"])
	}
	if !ok {
		cc.abort(s, errors.New("h2client: malformed response: Content-Length"), http2.ErrCodeProtocol, true)
		return nil
	}
	resp := &http.Response{
		Status: statusLine(code, status), StatusCode: code,
		Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: h, ContentLength: cl, Request: s.req, Body: s,
	}
	bodiless := s.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if f.endStream {
		resp.Body = http.NoBody
		if s.listed {
			resp.Body = endedBody{s.fields}
		}
		if cl > 0 && !bodiless {
			cc.abort(s, errors.New("h2client: response ended before its Content-Length"), http2.ErrCodeProtocol, true)
			return nil
		}
	}
	cc.mu.Lock()
	if s.headDone {
		cc.mu.Unlock()
		return nil // aborted meanwhile
	}
	s.resp = resp
	s.wantLen = cl
	if bodiless {
		s.wantLen = -1
	}
	s.headDone = true
	s.signal()
	var closeNow bool
	var lenErr error
	if f.endStream {
		closeNow, lenErr = cc.endRecvLocked(s)
	}
	cc.mu.Unlock()
	cc.afterEnd(s, closeNow, lenErr)
	return nil
}

// onTrailers takes the header block after the response head: trailers,
// which must end the stream.
func (cc *conn) onTrailers(s *stream, f *headBlock) error {
	if !f.endStream || len(f.pseudo()) > 0 {
		cc.abort(s, errors.New("h2client: malformed response trailers"), http2.ErrCodeProtocol, true)
		return nil
	}
	tr := cc.header(f.regular())
	cc.mu.Lock()
	if s.recvDone {
		cc.mu.Unlock()
		return nil
	}
	// The reader of the body sees the trailers after the EOF it takes
	// under mu.
	s.resp.Trailer = tr
	closeNow, lenErr := cc.endRecvLocked(s)
	cc.mu.Unlock()
	cc.afterEnd(s, closeNow, lenErr)
	return nil
}

// endRecvLocked ends s's response: io.EOF for its reader, unless the
// body fell short of its Content-Length, which is returned.
func (cc *conn) endRecvLocked(s *stream) (closeNow bool, lenErr error) {
	if s.wantLen >= 0 && s.gotLen != s.wantLen {
		return false, fmt.Errorf("h2client: response body of %d bytes, Content-Length %d", s.gotLen, s.wantLen)
	}
	s.recvDone, s.readErr = true, io.EOF
	s.signal()
	if s.sendDone {
		closeNow = cc.forgetLocked(s)
	}
	return closeNow, nil
}

// afterEnd finishes what endRecvLocked decided, outside mu.
func (cc *conn) afterEnd(s *stream, closeNow bool, lenErr error) {
	if lenErr != nil {
		cc.abort(s, lenErr, http2.ErrCodeProtocol, true)
		return
	}
	cc.closeIf(closeNow)
}

// onData buffers a DATA frame's payload for its stream's reader. The
// connection's window is given back as data arrives (a stream buffers at
// most its own window), the stream's as its reader takes the data.
func (cc *conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int32(f.Length)
	data := f.Data()
	cc.mu.Lock()
	if id%2 == 0 || id >= cc.nextID {
		cc.mu.Unlock()
		return errIdleStream
	}
	if n > cc.recvAvail {
		cc.mu.Unlock()
		return cc.connError(http2.ErrCodeFlowControl, "backend overran the connection window")
	}
	cc.recvAvail -= n
	cc.recvCredit += n
	var connCredit int32
	if cc.recvCredit >= cc.t.o.ConnWindow/2 {
		connCredit, cc.recvCredit = cc.recvCredit, 0
		cc.recvAvail += connCredit
	}
	s := cc.streams[id]
	var serr error
	var code http2.ErrCode
	var closeNow bool
	var padCredit int32
	switch {
	case s == nil || s.recvDone:
		// A closed stream (RFC 9113 6.1: still counted for the connection).
	case s.resp == nil:
		serr, code = errors.New("h2client: DATA before the response head"), http2.ErrCodeProtocol
	case n > s.recvAvail:
		serr, code = errors.New("h2client: backend overran the stream window"), http2.ErrCodeFlowControl
	case s.wantLen >= 0 && s.gotLen+int64(len(data)) > s.wantLen:
		serr, code = errors.New("h2client: response body longer than its Content-Length"), http2.ErrCodeProtocol
	default:
		s.recvAvail -= n
		// Padding is never read: its credit goes back now.
		if padCredit = n - int32(len(data)); padCredit > 0 {
			s.recvAvail += padCredit
		}
		s.gotLen += int64(len(data))
		if len(data) > 0 {
			s.push(data)
		}
		if f.StreamEnded() {
			var lenErr error
			closeNow, lenErr = cc.endRecvLocked(s)
			if lenErr != nil {
				serr, code = lenErr, http2.ErrCodeProtocol
			}
		}
	}
	cc.mu.Unlock()
	if connCredit > 0 {
		cc.writeFrame(func() error { return cc.fr.WriteWindowUpdate(0, uint32(connCredit)) })
	}
	if padCredit > 0 {
		cc.writeFrame(func() error { return cc.fr.WriteWindowUpdate(id, uint32(padCredit)) })
	}
	if serr != nil {
		cc.abort(s, serr, code, true)
	}
	cc.closeIf(closeNow)
	return nil
}

// onReset ends a stream the backend reset. REFUSED_STREAM before a
// response means the request was not processed (RFC 9113 8.7); NO_ERROR
// after a whole response only stops the request body (RFC 9113 8.1).
func (cc *conn) onReset(f *http2.RSTStreamFrame) error {
	s, err := cc.lookup(f.StreamID)
	if s == nil {
		return err
	}
	cc.mu.Lock()
	complete := s.recvDone && errors.Is(s.readErr, io.EOF)
	headDone := s.headDone
	cc.mu.Unlock()
	switch {
	case f.ErrCode == http2.ErrCodeRefusedStream && !headDone:
		cc.abort(s, fmt.Errorf("%w: stream refused", errUnprocessed), 0, false)
	case f.ErrCode == http2.ErrCodeNo && complete:
		cc.abort(s, errStopBody, 0, false)
	default:
		cc.abort(s, http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode}, 0, false)
	}
	return nil
}

var errStopBody = errors.New("h2client: backend answered and stopped the request body")

// onSettings applies the backend's SETTINGS and acknowledges them.
func (cc *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	cc.mu.Lock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = int(min(uint64(st.Val), uint64(cc.t.o.MaxStreamsPerConn)))
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - int64(cc.peerWindow)
			for _, s := range cc.streams {
				if int64(s.sendWindow)+delta > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				s.sendWindow += int32(delta)
			}
			cc.peerWindow = int32(st.Val)
		case http2.SettingMaxFrameSize:
			cc.peerFrame = st.Val
		case http2.SettingMaxHeaderListSize:
			cc.peerList = st.Val
		}
		return nil
	})
	cc.cond.Broadcast()
	cc.mu.Unlock()
	if err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return cc.connError(http2.ErrCode(ce), "bad SETTINGS")
		}
		return err
	}
	cc.writeFrame(func() error { return cc.fr.WriteSettingsAck() })
	cc.readyOnce.Do(func() { close(cc.ready) })
	return nil
}

// onWindowUpdate adds send credit to the connection or a stream.
func (cc *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	cc.mu.Lock()
	if f.StreamID == 0 {
		if int64(cc.sendWindow)+inc > maxWindow {
			cc.mu.Unlock()
			return cc.connError(http2.ErrCodeFlowControl, "connection window past 2^31-1")
		}
		cc.sendWindow += int32(inc)
		cc.cond.Broadcast()
		cc.mu.Unlock()
		return nil
	}
	if f.StreamID%2 == 0 || f.StreamID >= cc.nextID {
		cc.mu.Unlock()
		return errIdleStream
	}
	s := cc.streams[f.StreamID]
	overflow := s != nil && int64(s.sendWindow)+inc > maxWindow
	if s != nil && !overflow {
		s.sendWindow += int32(inc)
		cc.cond.Broadcast()
	}
	cc.mu.Unlock()
	if overflow {
		cc.abort(s, errors.New("h2client: stream window past 2^31-1"), http2.ErrCodeFlowControl, true)
	}
	return nil
}

// onGoAway stops new streams; the ones above the last id the backend
// processes fail as unprocessed, to be sent again elsewhere.
func (cc *conn) onGoAway(f *http2.GoAwayFrame) {
	cc.mu.Lock()
	cc.goingAway = true
	var refused []*stream
	for id, s := range cc.streams {
		if id > f.LastStreamID {
			refused = append(refused, s)
		}
	}
	closeNow := cc.open == 0
	cc.mu.Unlock()
	cc.t.drop(cc)
	for _, s := range refused {
		cc.abort(s, fmt.Errorf("%w: GOAWAY", errUnprocessed), 0, false)
	}
	cc.closeIf(closeNow)
}

// header makes a header map of fields, the canonical form of each name
// remembered per connection (backends repeat theirs), the values in one
// backing array (each slice capped at its length, so an append to one
// reallocates rather than overwriting the next).
func (cc *conn) header(fields []hpack.HeaderField) http.Header {
	h := make(http.Header, len(fields))
	vals := make([]string, 0, len(fields))
	for _, f := range fields {
		k := cc.names.Of(f.Name)
		if prev, ok := h[k]; ok {
			h[k] = append(prev, f.Value)
			continue
		}
		vals = append(vals, f.Value)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return h
}

// endedBody is the body of a listed response that ended with its head:
// empty, and keeping the head's fields for RoundTripFields.
type endedBody struct{ fields h1.Fields }

func (endedBody) Read([]byte) (int, error)    { return 0, io.EOF }
func (endedBody) Close() error                { return nil }
func (b endedBody) responseFields() h1.Fields { return b.fields }

// fieldList copies a head's regular fields (names lower-case, as HTTP/2
// sends them) into a list of its own: fields views the connection's
// decoding buffer.
func fieldList(fields []hpack.HeaderField) h1.Fields {
	out := make(h1.Fields, len(fields))
	for i, f := range fields {
		out[i] = h1.Field{Name: f.Name, Value: f.Value}
	}
	return out
}

// listedLength is contentLength over a field list.
func listedLength(fields h1.Fields) (int64, bool) {
	return lengthOf(func(yield func(string) bool) {
		for _, f := range fields {
			if f.Name == "content-length" && !yield(f.Value) {
				return
			}
		}
	})
}

// statusLine is the Response.Status for code, without building the
// string for the common ones.
func statusLine(code int, status string) string {
	switch code {
	case http.StatusOK:
		return "200 OK"
	case http.StatusNoContent:
		return "204 No Content"
	case http.StatusNotModified:
		return "304 Not Modified"
	case http.StatusNotFound:
		return "404 Not Found"
	case http.StatusInternalServerError:
		return "500 Internal Server Error"
	case http.StatusServiceUnavailable:
		return "503 Service Unavailable"
	}
	return status + " " + http.StatusText(code)
}

// parseStatus reads a three-digit :status.
func parseStatus(s string) (int, bool) {
	if len(s) != 3 || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// contentLength reads Content-Length values, which must agree: -1 when
// there are none.
func contentLength(vv []string) (int64, bool) { return lengthOf(slices.Values(vv)) }

// lengthOf parses the first of a response's Content-Length values; each
// repeat must be the same characters (as net/http's client requires), or
// the length is not known. -1 when there are none.
func lengthOf(values iter.Seq[string]) (int64, bool) {
	n, first := int64(-1), ""
	for v := range values {
		if n >= 0 {
			if v != first {
				return 0, false
			}
			continue
		}
		u, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return 0, false
		}
		n, first = int64(u), v
	}
	return n, true
}
