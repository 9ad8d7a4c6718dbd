package router

import (
	"github.com/false-systems/rauta/internal/ir"
)

// Table is a compiled ir.Listener. It is immutable and safe for concurrent
// use. It keeps no IR route of its own (a data plane's decoded routes are
// about as large as their compiled form): the next compile finds its routes
// by their Fingerprint, and only a route without one keeps its IR to be
// compared field by field.
type Table struct {
	// port and clientCert are the listener's, on which every compiled
	// route depends (reusable).
	port       uint32
	clientCert *ir.Certificate
	hosts      hostIndex[*VirtualHost]
	routes     []*Route
	// fingerprints holds each route's ir.Route.Fingerprint, by index in
	// routes ("" for none); sources, nil unless some route has none, holds
	// those routes' IR.
	fingerprints []string
	sources      []*ir.Route
}

// VirtualHost is a compiled ir.VirtualHost: its routes grouped by route
// hostname.
type VirtualHost struct {
	Name string
	// TerminateTLS is ir.VirtualHost.TerminateTLS (TLS listeners).
	TerminateTLS bool
	groups       hostIndex[*ruleSet]
}

// VirtualHost returns the virtual host that serves host, nil for none.
func (t *Table) VirtualHost(host string) *VirtualHost {
	var buf [maxHostLen]byte
	_, vh := t.lookupHost(&buf, host)
	return vh
}

// lookupHost normalises host (into buf when it fits) and finds its
// virtual host.
func (t *Table) lookupHost(buf *[maxHostLen]byte, host string) ([]byte, *VirtualHost) {
	h, ok := normalizeHost(buf, host)
	if !ok {
		h = []byte(NormalizeHostname(host))
	}
	vh, ok := t.hosts.lookup(h)
	if !ok {
		return h, nil
	}
	return h, vh
}

// Match returns the route for a request, or nil when none matches (404).
// It picks the VirtualHost with the most specific listener hostname, then
// the route hostname group within it likewise, and never falls through to a
// less specific host. It does not allocate for hosts up to 256 bytes.
func (t *Table) Match(r *Request) *Route {
	var buf [maxHostLen]byte
	host, vh := t.lookupHost(&buf, r.Host)
	if vh == nil {
		return nil
	}
	rules, ok := vh.groups.lookup(host)
	if !ok {
		return nil
	}
	return rules.match(r)
}

// Routes lists every compiled route of the table once, in configuration
// order (virtual hosts, then routes). Callers attach per-route state to the
// returned pointers, which Match returns.
func (t *Table) Routes() []*Route { return t.routes }
