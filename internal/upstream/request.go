package upstream

import (
	"strconv"
	"strings"

	"github.com/false-systems/rauta/internal/h1"
)

// Request is an outbound HTTP/1.1 request as an Exchange sends it, built
// from either client side (the HTTP/1.1 engine's parsed head, net/http's
// *http.Request) with the hop-by-hop fields dropped, then edited by the
// route's filters.
type Request struct {
	Method string
	// Path is the escaped path, or the whole origin-form target; a '?'
	// and Query follow it when Query is set or ForceQuery.
	Path, Query string
	ForceQuery  bool
	// Host is the Host field sent.
	Host string
	// Fields are the other fields, in the order they are sent.
	Fields h1.Fields
	// ContentLength is the length of the body that follows the head.
	ContentLength int64
}

// AppendHead appends the request head to b. The framing comes from
// ContentLength alone: Content-Length, Transfer-Encoding and Trailer
// fields in Fields are not written, nor Host (written from Host),
// whatever a filter put there, so no edit can make the backend read the
// body as a request of its own (smuggling). net/http's Transport leaves
// out the same four. Content-Length is written for a body, and as 0 for
// an empty POST, PUT or PATCH, as the Transport does.
func (r *Request) AppendHead(b []byte) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Path...)
	if r.Query != "" || r.ForceQuery {
		b = append(b, '?')
		b = append(b, r.Query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	for _, f := range r.Fields {
		if FramingField(f.Name) {
			continue
		}
		b = h1.AppendField(b, f.Name, f.Value)
	}
	if n := r.ContentLength; n > 0 || r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// FramingField reports a field AppendHead writes itself, or not at all:
// Host, and the three that frame the body (Content-Length,
// Transfer-Encoding, Trailer). Every forwarding path drops them from the
// fields it sends, so this is the one place that rule lives.
func FramingField(name string) bool {
	switch len(name) {
	case 4:
		return strings.EqualFold(name, "Host")
	case 7:
		return strings.EqualFold(name, "Trailer")
	case 14:
		return strings.EqualFold(name, "Content-Length")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

// Clone returns r with strings of its own: the HTTP/1.1 engine's view the
// connection's read buffer, which the next request overwrites, so a copy
// that outlives the request (a mirror's) takes one. Every string is cut
// from one allocation.
func (r *Request) Clone() Request {
	n := len(r.Method) + len(r.Path) + len(r.Query) + len(r.Host)
	for _, f := range r.Fields {
		n += len(f.Name) + len(f.Value)
	}
	var b strings.Builder
	b.Grow(n)
	mark := func(s string) [2]int {
		at := b.Len()
		b.WriteString(s)
		return [2]int{at, b.Len()}
	}
	method, path, query, host := mark(r.Method), mark(r.Path), mark(r.Query), mark(r.Host)
	spans := make([][2]int, 0, 2*len(r.Fields))
	for _, f := range r.Fields {
		spans = append(spans, mark(f.Name), mark(f.Value))
	}
	s := b.String()
	cut := func(m [2]int) string { return s[m[0]:m[1]] }
	out := Request{Method: cut(method), Path: cut(path), Query: cut(query), ForceQuery: r.ForceQuery,
		Host: cut(host), Fields: make(h1.Fields, len(r.Fields)), ContentLength: r.ContentLength}
	for i := range out.Fields {
		out.Fields[i] = h1.Field{Name: cut(spans[2*i]), Value: cut(spans[2*i+1])}
	}
	return out
}
