package configstream

import (
	"hash/maphash"
	"slices"

	"github.com/false-systems/rauta/internal/ir"
)

// At 10,000 HTTPRoutes a Config repeats the same few strings tens of
// thousands of times: every rule of a route names its hostname, its
// Service and the Service's endpoint addresses, every match its type, every
// header filter the same header names. Decoded, each is its own copy, and
// every rule its own list of the same backend and endpoints. A data plane
// keeps the decoded IR for as long as it serves it (/config_dump, change
// detection), so the decoder gives equal strings, endpoint lists and
// single-backend lists of one frame a single copy (interner).
//
// Sharing is safe because nothing modifies a decoded snapshot: strings are
// immutable, and the IR is read-only once published (package ir); the
// router and the load balancers copy what they keep.

// interner holds one frame's distinct strings and lists. It lives for one
// decode only, so it holds nothing of a Config no longer served.
//
// Routes come in precedence order, so the rules of one HTTPRoute are far
// apart in a frame: sharing goes through maps. Backends are looked up by
// name once, which finds the name, the Service's endpoints and a route's
// backend list at the same time; other endpoint lists are found by hash.
type interner struct {
	strings map[string]string
	// hostnames are the one-hostname lists by hostname: the rules of an
	// HTTPRoute have the same.
	hostnames map[string][]string
	backends  map[string]sharedBackend
	seed      maphash.Seed
	endpoints map[uint64][][]ir.Endpoint
}

// sharedBackend is what routes to one backend name share.
type sharedBackend struct {
	name      string
	endpoints []ir.Endpoint
	// list is the first plain one-backend list of that name.
	list []ir.Backend
}

// newInterner makes room for the distinct strings and backends of routes
// routes: a stream's first Config decodes every route, a later one only
// the changed few (0).
func newInterner(routes int) *interner {
	return &interner{
		strings:   make(map[string]string, routes),
		hostnames: make(map[string][]string, routes/2),
		backends:  make(map[string]sharedBackend, routes/2),
		seed:      maphash.MakeSeed(),
		endpoints: make(map[uint64][][]ir.Endpoint, routes/2),
	}
}

// str returns the frame's copy of s.
func (in *interner) str(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := constant(s); ok {
		return c
	}
	if c, ok := in.strings[s]; ok {
		return c
	}
	in.strings[s] = s
	return s
}

// route shares the strings and lists of r with the frame's earlier routes.
// Route names are unique and stay as decoded.
func (in *interner) route(r *ir.Route) {
	for i := range r.Hostnames {
		r.Hostnames[i] = in.str(r.Hostnames[i])
	}
	if len(r.Hostnames) == 1 {
		if c, ok := in.hostnames[r.Hostnames[0]]; ok {
			r.Hostnames = c
		} else {
			in.hostnames[r.Hostnames[0]] = r.Hostnames
		}
	}
	in.match(&r.Match)
	in.filters(r.Filters)
	if len(r.Backends) == 1 && plain(&r.Backends[0]) {
		r.Backends = in.plainList(r.Backends)
		return
	}
	for i := range r.Backends {
		in.backend(&r.Backends[i])
	}
}

// plain reports whether b is worth sharing by a cheap comparison: a
// backend without filters or TLS settings.
func plain(b *ir.Backend) bool { return len(b.Filters) == 0 && b.TLS == nil }

// plainList returns the frame's copy of a list of one plain backend.
func (in *interner) plainList(bs []ir.Backend) []ir.Backend {
	sb := in.backend(&bs[0])
	if sb.list == nil {
		sb.list = bs
		in.backends[sb.name] = sb
		return bs
	}
	a, b := &bs[0], &sb.list[0]
	if a.Weight == b.Weight && a.Invalid == b.Invalid && a.Policy == b.Policy && a.HashHeader == b.HashHeader &&
		a.AppProtocol == b.AppProtocol && sameList(a.Endpoints, b.Endpoints) {
		return sb.list
	}
	return bs
}

// sameList reports whether a and b are one list (interned lists are).
func sameList(a, b []ir.Endpoint) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (in *interner) match(m *ir.Match) {
	m.Path.Type = ir.PathMatchType(in.str(string(m.Path.Type)))
	m.Path.Value = in.str(m.Path.Value)
	m.Method = in.str(m.Method)
	in.values(m.Headers)
	in.values(m.QueryParams)
}

func (in *interner) values(vs []ir.ValueMatch) {
	for i := range vs {
		v := &vs[i]
		v.Type = ir.StringMatchType(in.str(string(v.Type)))
		v.Name, v.Value = in.str(v.Name), in.str(v.Value)
	}
}

func (in *interner) filters(fs []ir.Filter) {
	for i := range fs {
		f := &fs[i]
		in.headerModifier(f.RequestHeaders)
		in.headerModifier(f.ResponseHeaders)
		if r := f.Redirect; r != nil {
			r.Scheme, r.Hostname = in.str(r.Scheme), in.str(r.Hostname)
			in.pathModifier(r.Path)
		}
		if r := f.Rewrite; r != nil {
			r.Hostname = in.str(r.Hostname)
			in.pathModifier(r.Path)
		}
		if m := f.Mirror; m != nil {
			in.backend(&m.Backend)
		}
	}
}

func (in *interner) headerModifier(h *ir.HeaderModifier) {
	if h == nil {
		return
	}
	for _, hs := range [][]ir.Header{h.Set, h.Add} {
		for i := range hs {
			hs[i].Name, hs[i].Value = in.str(hs[i].Name), in.str(hs[i].Value)
		}
	}
	for i := range h.Remove {
		h.Remove[i] = in.str(h.Remove[i])
	}
}

func (in *interner) pathModifier(p *ir.PathModifier) {
	if p != nil {
		p.Type = ir.PathModifierType(in.str(string(p.Type)))
		p.Value = in.str(p.Value)
	}
}

// backend shares b's strings and endpoints and returns what its name
// shares.
func (in *interner) backend(b *ir.Backend) sharedBackend {
	sb, ok := in.backends[b.Name]
	if !ok {
		sb = sharedBackend{name: b.Name}
	}
	b.Name = sb.name
	b.Policy = ir.LBPolicy(in.str(string(b.Policy)))
	b.HashHeader, b.AppProtocol = in.str(b.HashHeader), in.str(b.AppProtocol)
	switch {
	case !ok:
		b.Endpoints = in.endpointList(b.Endpoints)
		sb.endpoints = b.Endpoints
		in.backends[sb.name] = sb
	case len(b.Endpoints) > 0 && slices.Equal(b.Endpoints, sb.endpoints):
		b.Endpoints = sb.endpoints
	default:
		b.Endpoints = in.endpointList(b.Endpoints)
	}
	in.filters(b.Filters)
	return sb
}

// endpointList returns the frame's copy of eps, found by hash: lists of
// different backend names (two ports of a Service) can be equal.
func (in *interner) endpointList(eps []ir.Endpoint) []ir.Endpoint {
	if len(eps) == 0 {
		return eps
	}
	var h maphash.Hash
	h.SetSeed(in.seed)
	for i := range eps {
		_, _ = h.WriteString(eps[i].Address)
		var b [8]byte
		b[0], b[1], b[2], b[3] = byte(eps[i].Port), byte(eps[i].Port>>8), byte(eps[i].Port>>16), byte(eps[i].Port>>24)
		b[4], b[5], b[6], b[7] = byte(eps[i].Weight), byte(eps[i].Weight>>8), byte(eps[i].Weight>>16), byte(eps[i].Weight>>24)
		_, _ = h.Write(b[:])
	}
	sum := h.Sum64()
	for _, c := range in.endpoints[sum] {
		if slices.Equal(c, eps) {
			return c
		}
	}
	// The addresses stay as decoded: a Service's endpoints are its own.
	in.endpoints[sum] = append(in.endpoints[sum], eps)
	return eps
}

// constant returns the IR's constant for the match, modifier and policy
// types and methods, which every route names, without a map lookup.
func constant(s string) (string, bool) {
	for _, c := range [...]string{string(ir.PathPrefix), string(ir.PathExact), "GET", string(ir.PathRegex),
		string(ir.ReplacePrefixMatch), string(ir.ReplaceFullPath), "POST", "PUT", "DELETE",
		string(ir.LBRoundRobin), string(ir.LBLeastRequest), string(ir.LBMaglev)} {
		if s == c {
			return c, true
		}
	}
	return "", false
}
