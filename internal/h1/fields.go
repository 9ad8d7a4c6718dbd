package h1

import (
	"strings"
)

// Field is one header field of the HTTP/1.1 engine, name in the case it
// was received or set in. HTTP field names are case-insensitive (RFC 9110
// 5.1), so the engine forwards them as they came, like nginx and HAProxy.
type Field struct{ Name, Value string }

// Fields is a header list in wire order. It serves the router as a
// router.HeaderGetter and header filters as a router.HeaderEditor, without
// building a map per request.
type Fields []Field

// Lookup returns the first value of name, matched case-insensitively.
func (f *Fields) Lookup(name string) (string, bool) {
	for i := range *f {
		if (*f)[i].Is(name) {
			return (*f)[i].Value, true
		}
	}
	return "", false
}

// Set replaces every value of name with value.
func (f *Fields) Set(name, value string) {
	f.Del(name)
	*f = append(*f, Field{name, value})
}

// Add appends a value of name.
func (f *Fields) Add(name, value string) { *f = append(*f, Field{name, value}) }

// Del removes every value of name.
func (f *Fields) Del(name string) {
	out := (*f)[:0]
	for _, h := range *f {
		if !h.Is(name) {
			out = append(out, h)
		}
	}
	clear((*f)[len(out):]) // drop references to the removed strings
	*f = out
}

// Is reports whether the field's name is name, case-insensitively.
func (h *Field) Is(name string) bool {
	return len(h.Name) == len(name) && strings.EqualFold(h.Name, name)
}

// IsHopField reports a field that is hop-by-hop by itself (RFC 9110
// 7.6.1): the fixed list and every Proxy-* header, in any case.
func IsHopField(name string) bool {
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

// NamedByConnection reports whether one of the Connection fields in src
// lists name as a token, which makes it hop-by-hop too.
func NamedByConnection(src []Field, name string) bool {
	for i := range src {
		if src[i].Is("Connection") && HasToken(src[i].Value, name) {
			return true
		}
	}
	return false
}

// HasToken reports whether the comma-separated value lists tok.
func HasToken(v, tok string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = TrimOWS(t); len(t) == len(tok) && strings.EqualFold(t, tok) {
			return true
		}
	}
	return false
}

// AppendField appends one field line, "name: value" and CRLF.
func AppendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}
