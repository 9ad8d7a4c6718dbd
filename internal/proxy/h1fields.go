package proxy

import (
	"strings"
)

// hfield is one header field of the HTTP/1.1 engine, name in the case it
// was received or set in. HTTP field names are case-insensitive (RFC 9110
// 5.1), so the engine forwards them as they came, like nginx and HAProxy.
type hfield struct{ name, value string }

// fields is a header list in wire order. It serves the router as a
// router.HeaderGetter and header filters as a router.HeaderEditor, without
// building a map per request.
type fields []hfield

// Lookup returns the first value of name, matched case-insensitively.
func (f *fields) Lookup(name string) (string, bool) {
	for i := range *f {
		if (*f)[i].is(name) {
			return (*f)[i].value, true
		}
	}
	return "", false
}

// Set replaces every value of name with value.
func (f *fields) Set(name, value string) {
	f.Del(name)
	*f = append(*f, hfield{name, value})
}

// Add appends a value of name.
func (f *fields) Add(name, value string) { *f = append(*f, hfield{name, value}) }

// Del removes every value of name.
func (f *fields) Del(name string) {
	out := (*f)[:0]
	for _, h := range *f {
		if !h.is(name) {
			out = append(out, h)
		}
	}
	clear((*f)[len(out):]) // drop references to the removed strings
	*f = out
}

// is reports whether the field's name is name, case-insensitively.
func (h *hfield) is(name string) bool {
	return len(h.name) == len(name) && strings.EqualFold(h.name, name)
}

// isHopField reports a field that is hop-by-hop by itself (RFC 9110
// 7.6.1): the fixed list and every Proxy-* header, in any case.
func isHopField(name string) bool {
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "Te")
	case 7:
		return strings.EqualFold(name, "Upgrade") || strings.EqualFold(name, "Trailer")
	case 10:
		if strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive") {
			return true
		}
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	}
	return len(name) >= 6 && strings.EqualFold(name[:6], "Proxy-")
}

// namedByConnection reports whether one of the Connection fields in src
// lists name as a token, which makes it hop-by-hop too.
func namedByConnection(src []hfield, name string) bool {
	for i := range src {
		if src[i].is("Connection") && hasToken(src[i].value, name) {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated value lists tok.
func hasToken(v, tok string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = trimOWS(t); len(t) == len(tok) && strings.EqualFold(t, tok) {
			return true
		}
	}
	return false
}

// appendField appends one field line, "name: value" and CRLF.
func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}
