package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// Route is a compiled ir.Route.
type Route struct {
	// Name is ir.Route.Name: the route label of metrics and logs.
	Name     string
	Timeouts ir.Timeouts
	// Retry is ir.Route.Retry (nil: no retries but the failover to
	// another endpoint).
	Retry *ir.Retry
	// Filters run in order before forwarding.
	Filters []Filter

	matcher matcher
	// backends is nil for a route without backends. It and hosts are
	// pointers, mostly shared with other routes of the Compile
	// (sharedbackend.go, sharedHosts), which keeps a Route in the 160-byte
	// size class (208 with the slices inline; BenchmarkCompileRoutes at
	// 10,000 routes: 0.5 MiB less heap, the shared targets counted).
	backends *backendSet
	// hosts are the hostname groups the route belongs to (its hostnames'
	// index keys, each once; the catch-all for none), kept with the route
	// so a reused one is not validated and lowered again.
	hosts *[]routeHost
	// Telemetry is the proxy's (telemetry.go).
	Telemetry atomic.Pointer[Telemetry]
}

// copyOf is a new Route with r's compiled fields (sharing its backends
// and filters) and no Telemetry of its own yet.
func (r *Route) copyOf() *Route {
	return &Route{Name: r.Name, Timeouts: r.Timeouts, Retry: r.Retry, Filters: r.Filters,
		matcher: r.matcher, backends: r.backends, hosts: r.hosts}
}

// routeHost is one hostname group key of a route.
type routeHost struct {
	key  string
	wild bool
}

// sharedHosts is one Compile's group keys of one-hostname routes by
// hostname: the rules of an HTTPRoute have the same hostnames, so at
// 10,000 HTTPRoutes (bench/routegen) 25,100 routes need 10,000 lists. A
// Route only reads its list.
type sharedHosts struct {
	byName map[string]*[]routeHost
}

// routeHosts is routeHosts(hostnames), the same list for routes with the
// same one hostname.
func (s *sharedHosts) routeHosts(hostnames []string) (*[]routeHost, error) {
	if len(hostnames) == 1 {
		if hosts, ok := s.byName[hostnames[0]]; ok {
			return hosts, nil
		}
	}
	hosts, err := routeHosts(hostnames)
	if err != nil {
		return nil, err
	}
	if len(hostnames) == 1 {
		if s.byName == nil {
			s.byName = map[string]*[]routeHost{}
		}
		s.byName[hostnames[0]] = &hosts
	}
	return &hosts, nil
}

// routeHosts returns the hostname group keys of hostnames, each once.
func routeHosts(hostnames []string) ([]routeHost, error) {
	if len(hostnames) == 0 {
		return []routeHost{{}}, nil
	}
	out := make([]routeHost, 0, len(hostnames))
	for _, h := range hostnames {
		key, wild, err := hostKey(h)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, routeHost{key, wild}) {
			out = append(out, routeHost{key, wild})
		}
	}
	return out, nil
}

// PickBackend maps a uniformly random draw onto a backend by weight. It
// returns nil when the route has no backend with a non-zero weight, which
// answers 500 unless a redirect filter answered first.
func (r *Route) PickBackend(draw uint64) *Backend { return r.backends.pick(draw) }

// Backends lists the route's backends in configuration order.
func (r *Route) Backends() []*Backend {
	if r.backends == nil {
		return nil
	}
	return r.backends.backends
}

// Compile builds the lookup structures of one listener. Endpoints come from
// reg, so their state outlives this Table. The error names the virtual host,
// route and field at fault.
func Compile(l *ir.Listener, reg *lb.Registry) (*Table, error) {
	return CompileReusing(l, reg, nil)
}

// CompileReusing is Compile taking from prev (a Table compiled earlier from
// the same registry, or nil) every route whose IR is unchanged, instead of
// compiling it again. A route change is one route of a thousand: reusing the
// rest makes a reload cost about what changed. A reused Route carries its
// state (load balancer position, connections counted for least-request)
// into the new Table, as a route that did not change should.
func CompileReusing(l *ir.Listener, reg *lb.Registry, prev *Table) (*Table, error) {
	n := 0
	for i := range l.VirtualHosts {
		n += len(l.VirtualHosts[i].Routes)
	}
	t := &Table{port: l.Port, clientCert: l.BackendClientCertificate, hosts: newHostIndex[*VirtualHost](),
		routes: make([]*Route, 0, n), fingerprints: make([]string, 0, n)}
	c := compiler{reg: reg, port: l.Port, table: t, reuse: reusable(prev, l)}
	if cc := l.BackendClientCertificate; cc != nil {
		cert, err := tls.X509KeyPair(cc.CertPEM, cc.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("backend client certificate %q: %w", cc.Name, err)
		}
		c.clientCert, c.clientCertKey = &cert, clientCertKey(cc)
	}
	for i := range l.VirtualHosts {
		ivh := &l.VirtualHosts[i]
		vh, err := c.virtualHost(ivh)
		if err != nil {
			return nil, fmt.Errorf("virtual host %q: %w", ivh.Name, err)
		}
		key, wild, err := hostKey(ivh.Hostname)
		if err != nil {
			return nil, fmt.Errorf("virtual host %q: %w", ivh.Name, err)
		}
		// VirtualHosts come most specific first; a later one with the same
		// hostname can never be reached, as with first-match in the IR.
		insertOnce(&t.hosts, key, wild, vh)
	}
	return t, nil
}

func insertOnce[T any](x *hostIndex[T], key string, wild bool, v T) {
	switch {
	case key == "":
		if !x.hasAny {
			x.any, x.hasAny = v, true
		}
	case wild:
		if _, ok := x.wild[key]; !ok {
			x.wild[key] = v
		}
	default:
		if _, ok := x.exact[key]; !ok {
			x.exact[key] = v
		}
	}
}

// compiler is one Compile's state.
type compiler struct {
	reg   *lb.Registry
	port  uint32
	table *Table
	reuse reuseIndex
	// backends are the plain backends compiled so far (sharedbackend.go).
	backends sharedBackends
	// hosts are the group keys of the one-hostname routes compiled so far.
	hosts sharedHosts
	// clientCert is the listener's certificate for TLS backends.
	clientCert    *tls.Certificate
	clientCertKey string
}

// ErrUnknownRoute is what compiling an elided route (ir.Route.Elided) whose
// Fingerprint the previous Table does not have returns, wrapped: the
// configuration cannot be served from what is compiled, and its sender
// must send every route whole (configstream resyncs).
var ErrUnknownRoute = errors.New("elided route not compiled before")

// compiledRoute is a compiled route with the IR it came from.
type compiledRoute struct {
	src *ir.Route
	rt  *Route
}

// reuseIndex is the previous Table's routes, each to be taken at most once.
type reuseIndex struct {
	prev *Table
	// byFingerprint holds the routes with a Fingerprint (those from the
	// config stream or the translator's cache) by index in prev.routes:
	// one map lookup each. dups holds the further routes of a
	// Fingerprint, taken in order; taken says which were.
	byFingerprint map[string]int
	dups          map[string][]int
	taken         []bool
	// byName holds the routes without a Fingerprint; taken entries are
	// nil'd.
	byName map[string][]compiledRoute
}

// reusable indexes prev's routes. Routes compiled for another port are not
// reusable: redirects and filters depend on it; nor for another backend
// client certificate: TLS backends' configs carry it.
func reusable(prev *Table, l *ir.Listener) reuseIndex {
	if prev == nil || prev.port != l.Port || !reflect.DeepEqual(prev.clientCert, l.BackendClientCertificate) {
		return reuseIndex{}
	}
	out := reuseIndex{prev: prev, byFingerprint: make(map[string]int, len(prev.routes)), taken: make([]bool, len(prev.routes))}
	for i, rt := range prev.routes {
		fp := prev.fingerprints[i]
		if fp == "" {
			src := prev.sources[i]
			if out.byName == nil {
				out.byName = map[string][]compiledRoute{}
			}
			out.byName[src.Name] = append(out.byName[src.Name], compiledRoute{src: src, rt: rt})
			continue
		}
		if _, dup := out.byFingerprint[fp]; dup {
			if out.dups == nil {
				out.dups = map[string][]int{}
			}
			out.dups[fp] = append(out.dups[fp], i)
			continue
		}
		out.byFingerprint[fp] = i
	}
	return out
}

// route returns the compiled src: an unchanged one from the previous Table,
// each at most once, or a new compilation. An elided src can only be taken
// from the previous Table; a second elided route of one Fingerprint when
// that Table had one is a copy of it, sharing its backends and filters.
func (c *compiler) route(src *ir.Route) (*Route, error) {
	if fp := src.Fingerprint; fp != "" {
		if i, ok := c.reuse.byFingerprint[fp]; ok {
			if !c.reuse.taken[i] {
				c.reuse.taken[i] = true
				return c.reuse.prev.routes[i], nil
			}
			if dups := c.reuse.dups[fp]; len(dups) > 0 {
				c.reuse.dups[fp] = dups[1:]
				return c.reuse.prev.routes[dups[0]], nil
			}
			if src.Elided {
				return c.reuse.prev.routes[i].copyOf(), nil
			}
		}
		if src.Elided {
			return nil, fmt.Errorf("%w (fingerprint %x)", ErrUnknownRoute, fp)
		}
	} else {
		for i, cand := range c.reuse.byName[src.Name] {
			if cand.rt != nil && reflect.DeepEqual(cand.src, src) {
				c.reuse.byName[src.Name][i].rt = nil
				return cand.rt, nil
			}
		}
	}
	return compileRoute(src, filterContext{listenerPort: c.port, path: src.Match.Path, reg: c.reg, clientCert: c.clientCert, clientCertKey: c.clientCertKey}, &c.backends, &c.hosts)
}

// add records rt, compiled from src, in the Table.
func (t *Table) add(rt *Route, src *ir.Route) {
	t.routes = append(t.routes, rt)
	t.fingerprints = append(t.fingerprints, src.Fingerprint)
	if src.Fingerprint == "" && t.sources == nil {
		t.sources = make([]*ir.Route, len(t.routes)-1, cap(t.routes))
	}
	if t.sources != nil {
		var keep *ir.Route
		if src.Fingerprint == "" {
			keep = src
		}
		t.sources = append(t.sources, keep)
	}
}

func (c *compiler) virtualHost(ivh *ir.VirtualHost) (*VirtualHost, error) {
	vh := &VirtualHost{Name: ivh.Name, TerminateTLS: ivh.TerminateTLS, groups: newHostIndex[*ruleSet]()}
	for i := range ivh.Routes {
		src := &ivh.Routes[i]
		rt, err := c.route(src)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", src.Name, err)
		}
		c.table.add(rt, src)
		for _, h := range *rt.hosts {
			groupFor(&vh.groups, h.key, h.wild).add(rt)
		}
	}
	return vh, nil
}

func groupFor(x *hostIndex[*ruleSet], key string, wild bool) *ruleSet {
	switch {
	case key == "":
		if !x.hasAny {
			x.any, x.hasAny = &ruleSet{}, true
		}
		return x.any
	case wild:
		if _, ok := x.wild[key]; !ok {
			x.wild[key] = &ruleSet{}
		}
		return x.wild[key]
	default:
		if _, ok := x.exact[key]; !ok {
			x.exact[key] = &ruleSet{}
		}
		return x.exact[key]
	}
}

func compileRoute(r *ir.Route, ctx filterContext, shared *sharedBackends, sharedHosts *sharedHosts) (*Route, error) {
	m, err := compileMatch(r.Match)
	if err != nil {
		return nil, err
	}
	hosts, err := sharedHosts.routeHosts(r.Hostnames)
	if err != nil {
		return nil, err
	}
	out := &Route{Name: r.Name, Timeouts: r.Timeouts, Retry: r.Retry, matcher: m, hosts: hosts}
	for i := range r.Filters {
		f, err := compileFilter(&r.Filters[i], ctx)
		if err != nil {
			return nil, fmt.Errorf("filters[%d]: %w", i, err)
		}
		out.Filters = append(out.Filters, f)
	}
	for i := range r.Backends {
		b := &r.Backends[i]
		cb, err := shared.compile(b, ctx)
		if err != nil {
			return nil, fmt.Errorf("backends[%d] %q: %w", i, b.Name, err)
		}
		if len(r.Backends) == 1 {
			out.backends = shared.single(b, cb)
			break
		}
		if out.backends == nil {
			out.backends = &backendSet{}
		}
		out.backends.add(cb, b.Weight)
	}
	return out, nil
}
