package h1

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// RequestHead is a parsed HTTP/1.1 request head. Its strings are views of one
// string that holds the whole head, so parsing allocates nothing more.
type RequestHead struct {
	Method, URI, Path, Query string
	Host                     string
	// ContentLength is the body length; the engine takes only requests
	// whose body is framed by Content-Length or absent.
	ContentLength int64
	// CloseAfter is set by Connection: close.
	CloseAfter bool
	// ConnNames: a Connection field names other fields (hop-by-hop).
	ConnNames bool
	// Ambiguous: both Content-Length and Transfer-Encoding, the classic
	// request-smuggling shape, which the engine refuses (400) and closes.
	Ambiguous bool
	// Fields are every field but Host, in wire order.
	Fields Fields
}

// ParseRequestHead parses head, which ends with the empty line, into rh,
// reusing rh.Fields. It returns false for every request the engine leaves
// to net/http: other protocol versions and request-target forms, bodies
// not framed by Content-Length, Upgrade and Expect, and every malformed
// request, which net/http then answers exactly as it always did. The checks
// are net/http's own (httpguts), so nothing passes here that net/http
// would reject. It also returns false, with rh.ambiguous set, for a
// request with both Content-Length and Transfer-Encoding: net/http would
// serve it and keep the connection, where RFC 9112 6.1 requires closing.
// That holds however the pair is dressed for net/http, which this parser
// leaves: a folded (obs-fold) value, a repeated Content-Length, a bare LF.
func ParseRequestHead(head string, rh *RequestHead) bool {
	if parseRequestHead(head, rh) {
		return true
	}
	rh.Ambiguous = rh.Ambiguous || framedTwice(head)
	return false
}

// framedTwice reports a head naming both Content-Length and
// Transfer-Encoding, read as leniently as net/http reads it: lines split at
// LF with or without CR, a line starting with a space or tab continuing the
// previous field (obs-fold), and any value. Only requests the engine leaves
// to net/http pay for it.
func framedTwice(head string) bool {
	_, rest, _ := strings.Cut(head, "\n") // the request line
	length, encoded := false, false
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		name = TrimOWS(name)
		length = length || strings.EqualFold(name, "Content-Length")
		encoded = encoded || strings.EqualFold(name, "Transfer-Encoding")
	}
	return length && encoded
}

func parseRequestHead(head string, rh *RequestHead) bool {
	rh.Fields = rh.Fields[:0]
	rh.ContentLength, rh.CloseAfter, rh.ConnNames, rh.Ambiguous, rh.Host = 0, false, false, false, ""
	line, rest, ok := cutLine(head)
	if !ok {
		return false
	}
	method, target, ok := strings.Cut(line, " ")
	if !ok || !httpguts.ValidHeaderFieldName(method) { // a method is a token
		return false
	}
	uri, proto, ok := strings.Cut(target, " ")
	if !ok || proto != "HTTP/1.1" || !validOriginForm(uri) {
		return false
	}
	rh.Method, rh.URI = method, uri
	rh.Path, rh.Query, _ = strings.Cut(uri, "?")

	hostSeen, lengthSeen, encoded, leave := false, false, false, false
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return false
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		// A leading space or tab (obs-fold) makes the name invalid too.
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return false
		}
		value = TrimOWS(value)
		if !httpguts.ValidHeaderFieldValue(value) {
			return false
		}
		switch {
		case len(name) == 4 && strings.EqualFold(name, "Host"):
			if hostSeen || !httpguts.ValidHostHeader(value) {
				return false
			}
			hostSeen, rh.Host = true, value
			continue
		case len(name) == 14 && strings.EqualFold(name, "Content-Length"):
			n, ok := parseLength(value)
			if lengthSeen || !ok {
				return false
			}
			lengthSeen, rh.ContentLength = true, n
		case len(name) == 10 && strings.EqualFold(name, "Connection"):
			leave = leave || HasToken(value, "upgrade")
			if HasToken(value, "close") {
				rh.CloseAfter = true
			}
			rh.ConnNames = rh.ConnNames || listsOtherTokens(value)
		case len(name) == 17 && strings.EqualFold(name, "Transfer-Encoding"):
			encoded = true
		case len(name) == 7 && strings.EqualFold(name, "Upgrade"),
			len(name) == 6 && strings.EqualFold(name, "Expect"):
			leave = true
		}
		rh.Fields = append(rh.Fields, Field{name, value})
	}
	// Read to the end before leaving, so no field order hides the
	// Content-Length and Transfer-Encoding pair.
	rh.Ambiguous = encoded && lengthSeen
	return hostSeen && !encoded && !leave
}

// cutLine splits off the first CRLF-terminated line of s. ok is false when
// a line ends in a bare LF, which the engine leaves to net/http (requests)
// or rejects (responses). IndexByte is much faster than Index("\r\n").
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, "", true
	}
	if i == 0 || s[i-1] != '\r' {
		return "", "", false
	}
	return s[:i-1], s[i+1:], true
}

// TrimOWS removes optional whitespace (spaces and tabs) around a field value.
func TrimOWS(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// listsOtherTokens reports a Connection value naming more than close and
// keep-alive, i.e. headers that become hop-by-hop.
func listsOtherTokens(v string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		t = TrimOWS(t)
		if t != "" && !strings.EqualFold(t, "close") && !strings.EqualFold(t, "keep-alive") {
			return true
		}
	}
	return false
}

// MaxRequestURI is the longest request-target served; longer ones get 414
// (nginx answers 414 past its 8 KiB large_client_header_buffers).
const MaxRequestURI = 8 << 10

// validOriginForm accepts an origin-form request-target ("/path?query") of
// visible ASCII whose path escapes are well formed and that is not longer
// than maxRequestURI (longer ones get net/http's 414 path).
func validOriginForm(uri string) bool {
	if uri == "" || uri[0] != '/' || len(uri) > MaxRequestURI {
		return false
	}
	inPath := true
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		switch {
		case c == '?':
			inPath = false
		case c == '%' && inPath:
			// net/http rejects a path with a broken escape (400).
			if i+2 >= len(uri) || !isHex(uri[i+1]) || !isHex(uri[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseLength parses a Content-Length value: decimal digits only.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// Framing says how a response body ends.
type Framing uint8

const (
	BodyNone    Framing = iota // HEAD, 1xx, 204, 304
	BodyLength                 // Content-Length bytes
	BodyChunked                // chunked transfer coding
	BodyToEOF                  // until the backend closes
)

// ResponseHead is a parsed HTTP/1.x response head; strings are views of the head.
type ResponseHead struct {
	Status        int
	Reason        string
	ContentLength int64
	Framing       Framing
	// CloseAfter: the backend will close (Connection: close, HTTP/1.0
	// without keep-alive, or a body that ends at EOF).
	CloseAfter bool
	HasDate    bool
	// ConnNames: a Connection field names other fields (hop-by-hop).
	ConnNames bool
	// Fields are all fields as received, hop-by-hop ones included.
	Fields Fields
}

// ErrBadResponse marks a response the engine cannot relay (502).
var ErrBadResponse = errors.New("malformed response from backend")

// ParseResponseHead parses a backend's response head. headRequest says the
// request was HEAD, which has no response body whatever the fields say.
func ParseResponseHead(head string, headRequest bool, rh *ResponseHead) error {
	rh.Fields = rh.Fields[:0]
	rh.ContentLength, rh.Framing, rh.CloseAfter, rh.HasDate, rh.ConnNames = -1, BodyToEOF, false, false, false
	line, rest, ok := cutLine(head)
	if !ok {
		return fmt.Errorf("%w: bare LF in status line", ErrBadResponse)
	}
	proto, status, ok := strings.Cut(line, " ")
	if !ok || (proto != "HTTP/1.1" && proto != "HTTP/1.0") {
		return fmt.Errorf("%w: status line %.40q", ErrBadResponse, line)
	}
	code, reason, _ := strings.Cut(status, " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '9' || !isDigit(code[1]) || !isDigit(code[2]) {
		return fmt.Errorf("%w: status line %.40q", ErrBadResponse, line)
	}
	rh.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if !visibleText(reason) {
		return fmt.Errorf("%w: reason phrase %.40q", ErrBadResponse, reason)
	}
	rh.Reason = reason
	keepAlive10 := false
	encoded := false
	// length is the first Content-Length value: a repeated field must
	// say it again in the same characters, as net/http's client requires
	// ("05" after "5" is refused, though both parse as 5).
	length := ""
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return fmt.Errorf("%w: bare LF in fields", ErrBadResponse)
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("%w: field line %.40q", ErrBadResponse, line)
		}
		value = TrimOWS(value)
		if !httpguts.ValidHeaderFieldValue(value) {
			return fmt.Errorf("%w: value of %q", ErrBadResponse, name)
		}
		switch {
		case len(name) == 14 && strings.EqualFold(name, "Content-Length"):
			n, ok := parseLength(value)
			if !ok || (rh.ContentLength >= 0 && value != length) {
				return fmt.Errorf("%w: Content-Length %q", ErrBadResponse, value)
			}
			rh.ContentLength, length = n, value
		case len(name) == 17 && strings.EqualFold(name, "Transfer-Encoding"):
			// Only chunked alone is relayed: the engine re-frames the body
			// and would drop any other coding the client must undo, so
			// that is a 502, as net/http's Transport refuses it too.
			if encoded || !strings.EqualFold(value, "chunked") {
				return fmt.Errorf("%w: Transfer-Encoding %.40q", ErrBadResponse, value)
			}
			encoded = true
		case len(name) == 10 && strings.EqualFold(name, "Connection"):
			if HasToken(value, "close") {
				rh.CloseAfter = true
			}
			keepAlive10 = HasToken(value, "keep-alive")
			rh.ConnNames = rh.ConnNames || listsOtherTokens(value)
		case len(name) == 4 && strings.EqualFold(name, "Date"):
			rh.HasDate = true
		}
		rh.Fields = append(rh.Fields, Field{name, value})
	}
	if proto == "HTTP/1.0" && encoded {
		// RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has
		// faulty framing; net/http ignores the field, a cache might not.
		return fmt.Errorf("%w: Transfer-Encoding in an HTTP/1.0 response", ErrBadResponse)
	}
	if proto == "HTTP/1.0" && !keepAlive10 {
		rh.CloseAfter = true
	}
	switch {
	case headRequest || rh.Status < 200 || rh.Status == 204 || rh.Status == 304:
		rh.Framing = BodyNone
	case encoded:
		rh.Framing = BodyChunked
		rh.ContentLength = -1 // RFC 9112 6.3: Transfer-Encoding overrides it
	case rh.ContentLength >= 0:
		rh.Framing = BodyLength
	default:
		rh.CloseAfter = true
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// visibleText reports text of the bytes RFC 9112 allows in a reason
// phrase (tab, space, visible ASCII, obs-text). A reason with anything
// else, a bare CR above all, would reach the client as written; chunk
// extensions, which the engine drops, are held to the same rule, since a
// bare CR or LF in one means a framing the client might read differently.
func visibleText[T string | []byte](r T) bool {
	for i := 0; i < len(r); i++ {
		if c := r[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// ParseChunkSize parses a chunk-size line without its CRLF: hex digits,
// then optional extensions after ';', which must hold no control bytes.
func ParseChunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto end
		}
		if i >= 15 {
			return 0, fmt.Errorf("%w: chunk size too large", ErrBadResponse)
		}
		n = n<<4 | int64(d)
	}
end:
	if i == 0 {
		return 0, fmt.Errorf("%w: chunk size %.20q", ErrBadResponse, line)
	}
	for ; i < len(line); i++ {
		if c := line[i]; c == ';' {
			if !visibleText(line[i:]) {
				return 0, fmt.Errorf("%w: chunk extension %.20q", ErrBadResponse, line[i:])
			}
			break
		} else if c != ' ' && c != '\t' {
			return 0, fmt.Errorf("%w: chunk size %.20q", ErrBadResponse, line)
		}
	}
	return n, nil
}

// ValidTrailer reports a trailer line that is a well-formed field.
func ValidTrailer(line []byte) bool {
	name, value, ok := bytes.Cut(line, []byte(":"))
	return ok && httpguts.ValidHeaderFieldName(string(name)) &&
		httpguts.ValidHeaderFieldValue(TrimOWS(string(value)))
}
