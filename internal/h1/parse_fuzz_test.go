package h1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// The fuzz targets below check the HTTP/1.1 engine's parsers against what
// they promise (parse.go) and, where net/http parses the same bytes,
// against net/http itself: the engine serves a request only if net/http's
// server would have served it the same way, so a difference in method,
// target, Host, Content-Length or any field value is a request the two
// paths of one socket would frame or route differently.

// requestSeeds covers ordinary, pipelined and hostile request heads.
var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /p/q?x=1&y=%zz HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
	"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n\tTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\nhello",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
	"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9 \xff\r\n\r\n",
	"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n",
	"GET http://a/abs HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / http/1.1\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nx-lower: v\r\nX-LOWER: w\r\nx_under: u\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: \t padded \t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
	"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a#frag?q HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\xc2\x85\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: \xc2\xa0close\r\n\r\n",
}

// FuzzParseRequestHead: parseRequestHead never panics, and every head it
// accepts obeys its invariants and is parsed identically by net/http.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	var rh RequestHead
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The engine parses the bytes through the first empty line.
		end := bytes.Index(raw, crlfcrlf)
		if end < 0 {
			return
		}
		head := string(raw[:end+4])
		if !ParseRequestHead(head, &rh) {
			return
		}
		checkRequestInvariants(t, head, &rh)
		checkRequestAgainstNetHTTP(t, head, &rh)
	})
}

// checkRequestInvariants checks what parseRequestHead promises for a head it
// accepted.
func checkRequestInvariants(t *testing.T, head string, rh *RequestHead) {
	t.Helper()
	if !isToken(rh.Method) {
		t.Fatalf("method %q is not a token in %q", rh.Method, head)
	}
	if !strings.HasPrefix(rh.URI, "/") || len(rh.URI) > MaxRequestURI {
		t.Fatalf("target %q is not origin-form in %q", rh.URI, head)
	}
	for i := 0; i < len(rh.URI); i++ {
		if c := rh.URI[i]; c <= ' ' || c >= 0x7f {
			t.Fatalf("target %q has byte %#x in %q", rh.URI, c, head)
		}
	}
	if want := rh.Path + "?" + rh.Query; rh.URI != rh.Path && rh.URI != want {
		t.Fatalf("path %q and query %q do not make target %q", rh.Path, rh.Query, rh.URI)
	}
	if !strings.HasPrefix(head, rh.Method+" "+rh.URI+" HTTP/1.1\r\n") {
		t.Fatalf("request line of %q is not %q %q HTTP/1.1", head, rh.Method, rh.URI)
	}
	if !httpguts.ValidHostHeader(rh.Host) {
		t.Fatalf("Host %q is not valid in %q", rh.Host, head)
	}
	// Every field line but Host is in fields, in order, with its value
	// trimmed of optional whitespace only.
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")[1:]
	hosts, lengths, closeSeen := 0, 0, false
	j := 0
	for _, line := range lines {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("accepted field line %q without a colon in %q", line, head)
		}
		if strings.EqualFold(name, "Host") {
			hosts++
			continue
		}
		if j >= len(rh.Fields) {
			t.Fatalf("field line %q missing from fields %q", line, rh.Fields)
		}
		f := rh.Fields[j]
		j++
		if f.Name != name || f.Value != strings.Trim(value, " \t") {
			t.Fatalf("field %d is %q: %q, want %q: %q", j-1, f.Name, f.Value, name, strings.Trim(value, " \t"))
		}
		if !isToken(f.Name) {
			t.Fatalf("field name %q is not a token in %q", f.Name, head)
		}
		if strings.ContainsAny(f.Value, "\r\n\x00") || strings.HasPrefix(f.Value, " ") || strings.HasSuffix(f.Value, " ") ||
			strings.HasPrefix(f.Value, "\t") || strings.HasSuffix(f.Value, "\t") {
			t.Fatalf("field %q has value %q", f.Name, f.Value)
		}
		switch {
		case strings.EqualFold(name, "Content-Length"):
			lengths++
			if n, err := strconv.ParseInt(f.Value, 10, 64); err != nil || n != rh.ContentLength || n < 0 || strings.TrimLeft(f.Value, "0123456789") != "" {
				t.Fatalf("Content-Length %q parsed as %d", f.Value, rh.ContentLength)
			}
		case strings.EqualFold(name, "Transfer-Encoding"), strings.EqualFold(name, "Upgrade"), strings.EqualFold(name, "Expect"):
			t.Fatalf("accepted %s, which the engine hands to net/http: %q", name, head)
		case strings.EqualFold(name, "Connection"):
			if httpguts.HeaderValuesContainsToken([]string{f.Value}, "upgrade") {
				t.Fatalf("accepted Connection: %q", f.Value)
			}
			closeSeen = closeSeen || httpguts.HeaderValuesContainsToken([]string{f.Value}, "close")
		}
	}
	if j != len(rh.Fields) {
		t.Fatalf("fields %q have %d entries beyond the head's lines", rh.Fields, len(rh.Fields)-j)
	}
	if hosts != 1 {
		t.Fatalf("accepted %d Host fields in %q", hosts, head)
	}
	if lengths > 1 || (lengths == 0 && rh.ContentLength != 0) {
		t.Fatalf("%d Content-Length fields, length %d in %q", lengths, rh.ContentLength, head)
	}
	if closeSeen && !rh.CloseAfter {
		t.Fatalf("Connection: close not noticed in %q", head)
	}
}

// checkRequestAgainstNetHTTP parses head with net/http's server-side rules
// and compares.
func checkRequestAgainstNetHTTP(t *testing.T, head string, rh *RequestHead) {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		t.Fatalf("engine accepted what net/http rejects (%v): %q", err, head)
	}
	// What net/http's server checks after ReadRequest (server.go readRequest).
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			t.Fatalf("net/http server rejects field name %q the engine accepted: %q", k, head)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("net/http server rejects value %q the engine accepted: %q", v, head)
			}
		}
	}
	switch {
	case req.Method != rh.Method:
		t.Fatalf("method: net/http %q, engine %q", req.Method, rh.Method)
	case req.RequestURI != rh.URI:
		t.Fatalf("target: net/http %q, engine %q", req.RequestURI, rh.URI)
	case req.URL.RawQuery != rh.Query:
		t.Fatalf("query: net/http %q, engine %q", req.URL.RawQuery, rh.Query)
	case req.Host != rh.Host:
		t.Fatalf("Host: net/http %q, engine %q", req.Host, rh.Host)
	case req.ContentLength != rh.ContentLength:
		t.Fatalf("Content-Length: net/http %d, engine %d in %q", req.ContentLength, rh.ContentLength, head)
	case req.Close != rh.CloseAfter && !unicodeSpaceAroundToken(req.Header["Connection"]):
		t.Fatalf("close after: net/http %v, engine %v in %q", req.Close, rh.CloseAfter, head)
	case len(req.TransferEncoding) != 0:
		t.Fatalf("net/http sees Transfer-Encoding %q the engine missed in %q", req.TransferEncoding, head)
	}
	engine := http.Header{}
	for _, f := range rh.Fields {
		k := textproto.CanonicalMIMEHeaderKey(f.Name)
		engine[k] = append(engine[k], f.Value)
	}
	// net/http adds Cache-Control: no-cache for Pragma: no-cache.
	if _, ok := engine["Cache-Control"]; !ok {
		delete(req.Header, "Cache-Control")
	}
	for k, vs := range req.Header {
		if !slices.Equal(vs, engine[k]) {
			t.Fatalf("field %s: net/http %q, engine %q in %q", k, vs, engine[k], head)
		}
	}
	for k, vs := range engine {
		if _, ok := req.Header[k]; !ok && k != "Cache-Control" {
			t.Fatalf("field %s: engine %q, net/http none in %q", k, vs, head)
		}
	}
}

// unicodeSpaceAroundToken reports Connection values with non-ASCII bytes,
// where the engine's hasToken trims Unicode spaces (U+0085, U+00A0, ...)
// that RFC 9110's OWS does not include. TestConnectionTokenTrimsOnlyOWS
// pins that bug; the fuzz target tolerates it so it can look for others.
func unicodeSpaceAroundToken(vs []string) bool {
	for _, v := range vs {
		for i := 0; i < len(v); i++ {
			if v[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}

// isToken is RFC 9110's token, written out here rather than taken from the
// code under test.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// responseSeeds covers ordinary and hostile response heads.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nto eof",
	"HTTP/1.0 200 OK\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 200\r\n\r\n",
	"HTTP/1.1 999 Odd\r\n\r\n",
	"HTTP/1.1 099 Low\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 0\r\n\r\n",
}

// FuzzParseResponseHead: parseResponseHead never panics and frames an
// accepted response as RFC 9112 section 6.3 says, as net/http's client
// does for the responses both accept.
func FuzzParseResponseHead(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	var rh ResponseHead
	f.Fuzz(func(t *testing.T, raw []byte, headRequest bool) {
		end := bytes.Index(raw, crlfcrlf)
		if end < 0 {
			return
		}
		head := string(raw[:end+4])
		if err := ParseResponseHead(head, headRequest, &rh); err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap errBadResponse", err)
			}
			return
		}
		checkResponseInvariants(t, head, headRequest, &rh)
		checkResponseAgainstNetHTTP(t, head, headRequest, &rh)
	})
}

func checkResponseInvariants(t *testing.T, head string, headRequest bool, rh *ResponseHead) {
	t.Helper()
	if rh.Status < 100 || rh.Status > 999 {
		t.Fatalf("status %d from %q", rh.Status, head)
	}
	if !strings.HasPrefix(head, "HTTP/1.1 "+strconv.Itoa(rh.Status)) && !strings.HasPrefix(head, "HTTP/1.0 "+strconv.Itoa(rh.Status)) {
		t.Fatalf("status %d is not in the status line of %q", rh.Status, head)
	}
	// Only LF is checked here: TestResponseReasonRejectsControlBytes pins
	// the engine relaying other control bytes, so fuzzing goes on past it.
	if strings.ContainsRune(rh.Reason, '\n') {
		t.Fatalf("reason %q has a line break", rh.Reason)
	}
	lengths := map[string]bool{}
	var te []string
	for _, f := range rh.Fields {
		if !isToken(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) || strings.ContainsAny(f.Value, "\r\n\x00") {
			t.Fatalf("field %q: %q accepted from %q", f.Name, f.Value, head)
		}
		switch {
		case strings.EqualFold(f.Name, "Content-Length"):
			lengths[f.Value] = true
		case strings.EqualFold(f.Name, "Transfer-Encoding"):
			te = append(te, f.Value)
		}
	}
	noBody := headRequest || rh.Status < 200 || rh.Status == 204 || rh.Status == 304
	// RFC 9112 6.3: chunked must be the final coding of the combined
	// Transfer-Encoding fields.
	chunked := false
	if len(te) > 0 {
		codings := strings.Split(strings.Join(te, ","), ",")
		chunked = strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked")
	}
	switch {
	case noBody:
		if rh.Framing != BodyNone {
			t.Fatalf("status %d (HEAD %v) framed %d, want none", rh.Status, headRequest, rh.Framing)
		}
	case chunked:
		if rh.Framing != BodyChunked || rh.ContentLength != -1 {
			t.Fatalf("chunked response framed %d, length %d: %q", rh.Framing, rh.ContentLength, head)
		}
	case len(te) > 0:
		if rh.Framing != BodyToEOF || !rh.CloseAfter {
			t.Fatalf("coded response not read to EOF: framing %d close %v in %q", rh.Framing, rh.CloseAfter, head)
		}
	case len(lengths) == 1:
		for v := range lengths {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || rh.Framing != BodyLength || rh.ContentLength != n {
				t.Fatalf("Content-Length %q framed %d length %d", v, rh.Framing, rh.ContentLength)
			}
		}
	default:
		if rh.Framing != BodyToEOF || !rh.CloseAfter {
			t.Fatalf("unframed response not read to EOF: %q", head)
		}
	}
	if len(lengths) > 1 {
		t.Fatalf("accepted differing Content-Length values %v in %q", lengths, head)
	}
}

// checkResponseAgainstNetHTTP compares with http.ReadResponse where it
// accepts the head. The engine is deliberately more lenient with backends
// in one way (Transfer-Encoding lists that end in chunked, or other codings
// read to EOF), and stricter in others (HTTP/1.x other than 1.0 and 1.1,
// status codes below 100), so only framing of heads both accept is
// compared.
func checkResponseAgainstNetHTTP(t *testing.T, head string, headRequest bool, rh *ResponseHead) {
	t.Helper()
	method := http.MethodGet
	if headRequest {
		method = http.MethodHead
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), &http.Request{Method: method})
	if err != nil {
		return
	}
	if resp.StatusCode != rh.Status {
		t.Fatalf("status: net/http %d, engine %d in %q", resp.StatusCode, rh.Status, head)
	}
	switch rh.Framing {
	case BodyLength:
		if resp.ContentLength != rh.ContentLength {
			t.Fatalf("length: net/http %d, engine %d in %q", resp.ContentLength, rh.ContentLength, head)
		}
	case BodyChunked:
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Fatalf("engine reads chunked, net/http %q in %q", resp.TransferEncoding, head)
		}
	case BodyToEOF:
		if resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 || !resp.Close {
			t.Fatalf("engine reads to EOF, net/http length %d coding %q close %v in %q", resp.ContentLength, resp.TransferEncoding, resp.Close, head)
		}
	case BodyNone:
		if resp.ContentLength > 0 && !headRequest {
			t.Fatalf("engine reads no body, net/http %d bytes in %q", resp.ContentLength, head)
		}
	}
	if resp.Close && !rh.CloseAfter {
		t.Fatalf("net/http closes after %q, the engine would pool the connection", head)
	}
}

// FuzzParseChunkSize: parseChunkSize never panics, accepts exactly hex
// digits (at most 15, so the size cannot overflow) followed by optional
// whitespace and an extension free of control bytes, and agrees with
// strconv.
func FuzzParseChunkSize(f *testing.F) {
	for _, s := range []string{
		"0", "5", "a", "FF", "ffffffffffffff", "fffffffffffffff", "ffffffffffffffff",
		"10000000000000001", "5;ext=1", "5 ;ext", "5\t", "5 x", ";ext", "", "-1", "+5",
		"0x5", "5;a\nb", "5;a\rb", " 5", "5\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		n, err := ParseChunkSize(line)
		digits := 0
		for digits < len(line) && strings.IndexByte("0123456789abcdefABCDEF", line[digits]) >= 0 {
			digits++
		}
		rest := strings.TrimLeft(string(line[digits:]), " \t")
		valid := digits > 0 && digits <= 15 && (rest == "" || rest[0] == ';') &&
			!strings.ContainsFunc(rest, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f })
		if err != nil {
			if valid {
				t.Fatalf("rejected valid chunk-size line %q: %v", line, err)
			}
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap errBadResponse", err)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted chunk-size line %q as %d", line, n)
		}
		want, perr := strconv.ParseInt(string(line[:digits]), 16, 64)
		if perr != nil || n != want || n < 0 {
			t.Fatalf("chunk size of %q: %d, want %d (%v)", line, n, want, perr)
		}
	})
}

// FuzzCutLine: cutLine splits at the first LF, accepts only CRLF line
// ends, and never loses or invents bytes.
func FuzzCutLine(f *testing.F) {
	for _, s := range []string{"", "a", "a\r\nb", "\n", "\r\n", "a\nb", "a\r\r\nb", "\ra\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line, rest, ok := cutLine(s)
		i := strings.IndexByte(s, '\n')
		switch {
		case i < 0:
			if !ok || line != s || rest != "" {
				t.Fatalf("cutLine(%q) = %q, %q, %v", s, line, rest, ok)
			}
		case i == 0 || s[i-1] != '\r':
			if ok {
				t.Fatalf("cutLine(%q) accepted a bare LF: %q, %q", s, line, rest)
			}
		default:
			if !ok || line+"\r\n"+rest != s || strings.IndexByte(line, '\n') >= 0 {
				t.Fatalf("cutLine(%q) = %q, %q, %v", s, line, rest, ok)
			}
		}
	})
}

// TestConnectionTokenTrimsOnlyOWS: list elements of Connection are
// separated by OWS (spaces and tabs, RFC 9110 5.6.1), so "close" followed
// by U+0085 or preceded by U+00A0 is a different token, as net/http reads
// it; trimming Unicode spaces too (strings.TrimSpace, as the engine once
// did) closes connections and drops fields the net/http path keeps.
func TestConnectionTokenTrimsOnlyOWS(t *testing.T) {
	var rh RequestHead
	for _, value := range []string{"close\xc2\x85", "\xc2\xa0close", "close\xe3\x80\x80"} {
		head := "GET / HTTP/1.1\r\nHost: a\r\nConnection: " + value + "\r\n\r\n"
		if !ParseRequestHead(head, &rh) {
			continue // handing it to net/http is fine too
		}
		if rh.CloseAfter {
			t.Errorf("Connection: %q read as close; net/http reads another token", value)
		}
	}
}

func isCTL(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }

// TestResponseReasonRejectsControlBytes: RFC 9112 4 allows only HTAB, SP,
// VCHAR and obs-text in a reason phrase, and 2.2 requires a recipient to
// reject a bare CR or replace it with SP before forwarding. The engine
// relays the reason phrase (the net/http path never does), so it must
// reject one that a client could read differently.
func TestResponseReasonRejectsControlBytes(t *testing.T) {
	var rh ResponseHead
	for _, reason := range []string{"OK\r", "\r", "O\x00K", "OK\x7f", "O\x1bK"} {
		head := "HTTP/1.1 200 " + reason + "\r\nContent-Length: 0\r\n\r\n"
		if err := ParseResponseHead(head, false, &rh); err == nil && strings.ContainsFunc(rh.Reason, isCTL) {
			t.Errorf("status line with reason %q accepted as %d %q; want errBadResponse (or the reason replaced)", reason, rh.Status, rh.Reason)
		}
	}
}

// TestResponseRepeatedContentLength: a repeated Content-Length is accepted
// only with the same value in the same characters, as net/http's client
// accepts it; "05" after "5" frames the same body in the engine but reads
// as two different fields to anything comparing them (found by
// FuzzParseResponseHead).
func TestResponseRepeatedContentLength(t *testing.T) {
	var rh ResponseHead
	for _, c := range []struct {
		head string
		ok   bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nContent-Length:05\r\nContent-Length: 5\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 005\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false},
	} {
		err := ParseResponseHead(c.head, false, &rh)
		switch {
		case c.ok && (err != nil || rh.Framing != BodyLength || rh.ContentLength != 5):
			t.Errorf("%q: %v, framing %d length %d; want a 5-byte body", c.head, err, rh.Framing, rh.ContentLength)
		case !c.ok && !errors.Is(err, ErrBadResponse):
			t.Errorf("%q: %v; want ErrBadResponse", c.head, err)
		}
	}
}
