package h2

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// responseBuffer is how much body a response holds before sending: a
// small response leaves with its HEADERS in one go and gets a
// Content-Length.
const responseBuffer = 16 << 10

// responseWriter is the http.ResponseWriter of one stream, used by the
// handler's goroutine only.
type responseWriter struct {
	st     *stream
	header http.Header
	isHead bool

	status int // the final status, 0 until written
	// sentHeader and ended are guarded by c.mu: a stalled request body's
	// 408 sets them (stall.go).
	sentHeader  bool
	ended       bool
	trailers    []string // declared with the Trailer field
	declaredLen int64    // the handler's Content-Length, -1 if none
	written     int64
	buf         []byte  // the body not sent yet; never grows past responseBuffer
	bufp        *[]byte // where buf came from, and goes back to

	// snap is Header() as WriteHeader found it, one entry per value: the
	// strings cannot change, so this is a whole copy without copying
	// them. The backing array is the worker's, reused stream after
	// stream (a Header.Clone was three allocations per response).
	snap                      []headField
	snapType, snapDate, coded bool // Content-Type, Date, Content-Encoding set
	// values is the worker's array for HeaderValues; valuesTaken: it was
	// handed out in this response.
	values      *[]string
	valuesTaken bool
}

func (w *responseWriter) Header() http.Header { return w.header }

// HeaderValues returns n empty strings for a handler to fill with the
// values of its response's Header() and slice them from, so that a
// response of many fields costs one array, not one per field: the worker
// that runs the stream reuses the array for its next stream once the
// response is sent, as it reuses the Header() map. The strings themselves
// must not change: the connection's HPACK table keeps them. A second call
// in one response gets a new array.
func (w *responseWriter) HeaderValues(n int) []string {
	vals := *w.values
	if w.valuesTaken || cap(vals) < n {
		vals = make([]string, n)
		if n <= maxKeptHeader && !w.valuesTaken {
			*w.values = vals
		}
	}
	w.valuesTaken = true
	return vals[:n]
}

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.status != 0 {
		return // superfluous, as net/http ignores it
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		c := w.st.c
		c.mu.Lock()
		w.writeInformational(code, w.header)
		c.mu.Unlock()
		return
	}
	w.status = code
	w.declaredLen = -1
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.declaredLen = n
		} else {
			w.header.Del("Content-Length") // as net/http drops an invalid one
		}
	}
	// Later changes to Header() are not sent, as with net/http, except
	// trailers.
	w.snap = w.snap[:0]
	for k, vv := range w.header {
		for _, v := range vv {
			w.snap = append(w.snap, headField{k, v})
		}
	}
	_, w.snapType = w.header["Content-Type"]
	_, w.snapDate = w.header["Date"]
	w.coded = w.header.Get("Content-Encoding") != ""
	for _, v := range w.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k)); k != "" && httpguts.ValidTrailerHeader(k) {
				w.trailers = append(w.trailers, k)
			}
		}
	}
}

// WriteHead writes code with fields as the head of w's response, as
// WriteHeader would with Header() holding exactly those fields, without
// the map: a proxy relaying a backend's head spends no canonical key, map
// entry and map walk per field. Names may be in any case. No Content-Type
// among the fields means the response has none: its body is not sniffed
// for one. The fields' strings must not change (the connection's HPACK
// table keeps them); the slice itself is not kept.
//
// It reports false and writes nothing when w is not one of this package's
// streams, a head was written, code is not a final status, Header() holds
// fields, or the fields declare trailers (Trailer) or disagree on their
// Content-Length: the caller then uses Header() and WriteHeader, which
// handle those.
func WriteHead[F ~struct{ Name, Value string }](w http.ResponseWriter, code int, fields []F) bool {
	rw, ok := w.(*responseWriter)
	if !ok || rw.status != 0 || code < 200 || code > 999 || len(rw.header) != 0 {
		return false
	}
	declared := int64(-1)
	for _, f := range fields {
		f := struct{ Name, Value string }(f)
		switch {
		case strings.EqualFold(f.Name, "Trailer"):
			return false
		case strings.EqualFold(f.Name, "Content-Length"):
			n, err := strconv.ParseInt(f.Value, 10, 64)
			if err != nil || n < 0 || (declared >= 0 && n != declared) {
				return false
			}
			declared = n
		}
	}
	rw.status, rw.declaredLen = code, declared
	rw.snap = rw.snap[:0]
	rw.snapType, rw.snapDate, rw.coded = true, false, false
	for _, f := range fields {
		f := struct{ Name, Value string }(f)
		rw.snap = append(rw.snap, headField{f.Name, f.Value}) // encodeValue leaves out forbidden ones
		switch {
		case strings.EqualFold(f.Name, "Date"):
			rw.snapDate = true
		case f.Value != "" && strings.EqualFold(f.Name, "Content-Encoding"):
			rw.coded = true
		}
	}
	return true
}

// forbiddenField reports a connection-specific field, which HTTP/2 does
// not carry (RFC 9113 8.2.2), in any case: Header() keys set without
// canonicalising and WriteHead's lists name them as they please.
func forbiddenField(name string) bool {
	switch len(name) {
	case len("Connection"): // and Keep-Alive
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case len("Proxy-Connection"):
		return strings.EqualFold(name, "Proxy-Connection")
	case len("Transfer-Encoding"):
		return strings.EqualFold(name, "Transfer-Encoding")
	case len("Upgrade"):
		return strings.EqualFold(name, "Upgrade")
	}
	return false
}

// bodyAllowed: no body goes with 1xx, 204 and 304, nor answers HEAD.
func (w *responseWriter) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declaredLen >= 0 && w.written+int64(len(p)) > w.declaredLen {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.isHead {
		return len(p), nil
	}
	if len(w.buf)+len(p) <= responseBuffer {
		if w.bufp == nil {
			w.bufp = w.st.c.srv.getBuffer()
			w.buf = (*w.bufp)[:0]
		}
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if len(w.buf) > 0 {
		if err := w.send(w.buf, false); err != nil {
			return 0, err
		}
		w.buf = w.buf[:0]
	}
	// With nothing buffered, p's start is what the head sniffs.
	if err := w.send(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *responseWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush sends the head and what is buffered (http.Flusher).
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting a failure, for http.ResponseController.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	err := w.send(w.buf, false)
	w.buf = w.buf[:0]
	return err
}

// ResetStream ends the stream at once with RST_STREAM and code, for a
// proxy relaying a reset from an HTTP/2 backend: a gRPC server's CANCEL at
// the call's deadline then reaches the client as it would without a proxy.
// The handler should return after it. False when the stream has ended
// already.
func (w *responseWriter) ResetStream(code http2.ErrCode) bool {
	st := w.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.resetErr != nil || w.ended {
		return false
	}
	c.sendReset(st.id, code)
	st.reset(fmt.Errorf("h2: stream reset by its handler: %v", code))
	c.queued()
	return true
}

// finish ends the response after the handler returned.
func (w *responseWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.send(w.buf, true) // a failure means the stream is gone already
}

// release returns the body buffer; send copied what it sent.
func (w *responseWriter) release() {
	if w.bufp != nil {
		w.st.c.srv.putBuffer(w.bufp)
		w.bufp, w.buf = nil, nil
	}
}

// send queues the head unless sent, then data as DATA frames within the
// client's windows, and with end the trailers and END_STREAM.
func (w *responseWriter) send(data []byte, end bool) error {
	st := w.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if end {
		// Only finish ends a response, so the handler has returned: its
		// request body closes before the response's end goes out, and a
		// body handle kept past the handler never reads on (EOF) once the
		// client has the whole response (TestStreamReuse).
		st.bodyClosed = true
		st.dropBody()
		st.cond.Broadcast()
	}
	if st.resetErr != nil {
		return st.resetErr
	}
	if w.ended {
		return nil
	}
	// The trailers to send, collected once after the head's fields in
	// snap's backing array (encodeHead reads snap[:head] only).
	head := len(w.snap)
	if end {
		w.eachTrailer(w.addTrailer)
	}
	tail := w.snap[head:]
	w.snap = w.snap[:head]
	trailers := len(tail) > 0
	// endSent: a frame carried END_STREAM already (the head of an empty
	// response, or the last DATA).
	endSent := false
	if !w.sentHeader {
		w.sentHeader = true
		endSent = end && len(data) == 0 && !trailers
		c.writeHeaderBlock(st.id, w.encodeHead(data, end && !trailers), endSent)
		c.queued()
	}
	for len(data) > 0 {
		n := min(int64(len(data)), int64(c.peerMaxFrame), st.sendWindow, c.sendWindow)
		if n <= 0 || len(c.out) > maxOut {
			if st.resetErr != nil {
				return st.resetErr
			}
			if n <= 0 {
				st.waitWindow = true
				c.watchStalls()
				c.sendCond.Wait()
				st.waitWindow = false
			} else {
				c.drained.Wait()
			}
			continue
		}
		last := n == int64(len(data))
		endSent = end && last && !trailers
		c.writeData(st.id, data[:n], endSent)
		st.sendWindow -= n
		c.sendWindow -= n
		st.stall.sent += n
		data = data[n:]
		c.queued()
	}
	if !end {
		return nil
	}
	switch {
	case trailers:
		// Through encodeValue, as the head's fields: names lowered once
		// per connection, and a field sent before (grpc-status: 0) sent
		// as its table index without a search.
		c.hbuf.Reset()
		for _, f := range tail {
			c.encodeValue(f.key, f.value)
		}
		c.writeHeaderBlock(st.id, c.hbuf.Bytes(), true)
	case !endSent: // the head and body went out before; end with an empty DATA
		c.writeData(st.id, nil, true)
	}
	c.queued()
	w.ended = true
	if st.remoteDone {
		// Closed both ways: a HEADERS frame for it from now on is a
		// connection error (RFC 9113 5.1), even before the handler's
		// goroutine gets to streamDone.
		delete(c.streams, st.id)
	}
	return nil
}

// writeInformational sends a 1xx head with h's fields. Callers hold c.mu.
func (w *responseWriter) writeInformational(code int, h http.Header) {
	c := w.st.c
	if w.sentHeader || w.st.resetErr != nil {
		return
	}
	c.hbuf.Reset()
	c.writeField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(code)})
	for k, vv := range h {
		c.encodeField(k, vv)
	}
	c.writeHeaderBlock(w.st.id, c.hbuf.Bytes(), false)
	c.queued()
}

// encodeHead encodes the response head into c.hbuf. first is the start of
// the body, for sniffing a Content-Type and, when it is the whole body, for
// a Content-Length. Callers hold c.mu.
func (w *responseWriter) encodeHead(first []byte, whole bool) []byte {
	c := w.st.c
	c.hbuf.Reset()
	c.writeField(hpack.HeaderField{Name: ":status", Value: statusText(w.status)})
	for _, f := range w.snap {
		if !w.isTrailer(f.key) {
			c.encodeValue(f.key, f.value)
		}
	}
	if !w.snapType && w.bodyAllowed() && len(first) > 0 && !w.coded {
		c.writeField(hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(first)})
	}
	if !w.snapDate {
		c.writeField(hpack.HeaderField{Name: "date", Value: c.date()})
	}
	if whole && w.declaredLen < 0 && w.bodyAllowed() && (len(first) > 0 || !w.isHead) {
		c.writeField(hpack.HeaderField{Name: "content-length", Value: c.contentLength(len(first))})
	}
	return c.hbuf.Bytes()
}

func (w *responseWriter) isTrailer(k string) bool {
	if strings.HasPrefix(k, http.TrailerPrefix) {
		return true
	}
	for _, t := range w.trailers {
		if t == k {
			return true
		}
	}
	return false
}

// eachTrailer calls f with every trailer value to send: the declared
// trailers' and those set with http.TrailerPrefix, valid values only.
func (w *responseWriter) eachTrailer(f func(k, v string)) {
	each := func(k string, vv []string) {
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				f(k, v)
			}
		}
	}
	for _, k := range w.trailers {
		each(k, w.header[k])
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidTrailerHeader(textproto.CanonicalMIMEHeaderKey(name)) {
			each(name, vv)
		}
	}
}

// addTrailer appends a trailer value to snap, past the head's fields.
func (w *responseWriter) addTrailer(k, v string) { w.snap = append(w.snap, headField{k, v}) }

// headField is one value of a response field; key is as in http.Header.
type headField struct{ key, value string }

// encodeField adds one response field with its values. Callers hold c.mu.
func (c *conn) encodeField(k string, vv []string) {
	for _, v := range vv {
		c.encodeValue(k, v)
	}
}

// encodeValue adds one value of a response field, leaving out the
// connection-specific fields HTTP/2 forbids and invalid names and values,
// as net/http does. Callers hold c.mu.
func (c *conn) encodeValue(k, v string) {
	if c.encodedValue(k, v) {
		return // sent before, allowed and valid
	}
	if forbiddenField(k) {
		return
	}
	name, ok := c.lower[k]
	if !ok {
		if !httpguts.ValidHeaderFieldName(k) {
			return
		}
		name = strings.ToLower(k)
		if len(c.lower) < 1024 {
			c.lower[k] = name
		}
	}
	if httpguts.ValidHeaderFieldValue(v) {
		c.keepEncoded(k, v, c.writeField(hpack.HeaderField{Name: name, Value: v}))
	}
}

// date returns the Date field's value, formatted once a second.
func (c *conn) date() string {
	now := time.Now()
	if sec := now.Unix(); sec != c.dateSec {
		c.dateSec = sec
		c.dateVal = now.UTC().Format(http.TimeFormat)
	}
	return c.dateVal
}

// contentLength returns n formatted, the last value kept: responses of
// one size follow each other. Callers hold c.mu.
func (c *conn) contentLength(n int) string {
	if n != c.lenN || c.lenVal == "" {
		c.lenN, c.lenVal = n, strconv.Itoa(n)
	}
	return c.lenVal
}

// statusText is the :status value, without allocating for common codes.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	}
	return strconv.Itoa(code)
}
