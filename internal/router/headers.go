package router

import (
	"net/http"
	"net/textproto"

	"github.com/false-systems/rauta/internal/ir"
)

// HeaderModifier is a compiled ir.HeaderModifier: names are canonical and
// each value is a ready one-element slice, so Apply does not allocate for
// Set, Remove, or an Add of a header the request does not carry yet.
type HeaderModifier struct {
	set    []headerValue
	add    []headerValue
	remove []string
}

type headerValue struct {
	name string
	// values is a one-element slice shared by every request. Its capacity
	// is 1, so an append by anyone copies instead of writing into it.
	values []string
}

func compileHeaderModifier(m *ir.HeaderModifier) *HeaderModifier {
	out := &HeaderModifier{}
	for _, h := range m.Set {
		out.set = append(out.set, newHeaderValue(h))
	}
	for _, h := range m.Add {
		out.add = append(out.add, newHeaderValue(h))
	}
	for _, name := range m.Remove {
		out.remove = append(out.remove, textproto.CanonicalMIMEHeaderKey(name))
	}
	return out
}

func newHeaderValue(h ir.Header) headerValue {
	v := []string{h.Value}
	return headerValue{name: textproto.CanonicalMIMEHeaderKey(h.Name), values: v[:1:1]}
}

// NewHeaderModifier compiles m; names are matched case-insensitively.
func NewHeaderModifier(m *ir.HeaderModifier) *HeaderModifier { return compileHeaderModifier(m) }

// Apply sets, adds and removes headers in that order, as the Gateway API
// specifies. Set replaces every value of the header; Add appends one. The
// caller must not modify the value slices Apply stores in place.
func (m *HeaderModifier) Apply(h http.Header) {
	for _, s := range m.set {
		h[s.name] = s.values
	}
	for _, a := range m.add {
		if old, ok := h[a.name]; ok && len(old) > 0 {
			h[a.name] = append(old, a.values[0])
		} else {
			h[a.name] = a.values
		}
	}
	for _, name := range m.remove {
		delete(h, name)
	}
}

// HeaderEditor is a header store other than http.Header, such as the
// HTTP/1.1 engine's field lists. Names passed to it are canonical; an
// implementation matches them case-insensitively.
type HeaderEditor interface {
	Set(name, value string)
	Add(name, value string)
	Del(name string)
}

// ApplyTo is Apply for a HeaderEditor: the same sets, adds and removes in
// the same order.
func (m *HeaderModifier) ApplyTo(e HeaderEditor) {
	for _, s := range m.set {
		e.Set(s.name, s.values[0])
	}
	for _, a := range m.add {
		e.Add(a.name, a.values[0])
	}
	for _, name := range m.remove {
		e.Del(name)
	}
}
