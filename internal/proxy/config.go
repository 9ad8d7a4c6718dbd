package proxy

import (
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/router"
)

// listenerConfig is everything a request on one socket needs, compiled from
// one ir.Listener. It is immutable once published, but for the metrics
// caches routes and backends, which requests fill.
type listenerConfig struct {
	name     string
	gateway  string
	protocol ir.Protocol
	// scheme is "http" or "https": X-Forwarded-Proto and redirects.
	scheme string
	table  *router.Table
	certs  *certStore
	// clientAuth is the listener's client certificate check, nil for none.
	clientAuth *clientAuth
	noRoute    *routeMetrics
	// routes (*router.Route -> *routeMetrics) and backends
	// (*router.Backend -> *backendMetrics, mirrors not counted) hold the
	// metrics of the routes and backends that served a request on this
	// configuration, found on the first one (routemetrics.go).
	routes   sync.Map
	backends sync.Map
	// gen is this configuration's number (Server.configGen): the routes'
	// and backends' router.Telemetry caches what the maps above hold for
	// the configuration of that number.
	gen uint64
}

// compiled is a whole snapshot compiled, before any socket changes.
type compiled struct {
	listeners []*listenerConfig
	bindAddr  map[*listenerConfig]string
}

// compile builds every listener of snap. It touches no socket and no shared
// state except the endpoint registry (which only grows), so a failure leaves
// the served configuration as it was.
func (s *Server) compile(snap *ir.Snapshot) (*compiled, error) {
	out := &compiled{bindAddr: map[*listenerConfig]string{}}
	names := map[string]bool{}
	addrs := map[string]string{}
	for i := range snap.Listeners {
		l := &snap.Listeners[i]
		if l.Name == "" {
			return nil, fmt.Errorf("listener %d: empty name", i)
		}
		if names[l.Name] {
			return nil, fmt.Errorf("listener %q: name used twice", l.Name)
		}
		names[l.Name] = true
		addr, err := s.bindAddress(l)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		// TCP and UDP sockets may share an address and port.
		claim := transport(l.Protocol) + " " + addr
		if other, ok := addrs[claim]; ok && l.Port != 0 {
			return nil, fmt.Errorf("listener %q: address %s already used by listener %q", l.Name, addr, other)
		}
		addrs[claim] = l.Name
		lc, err := s.compileListener(l)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		out.listeners = append(out.listeners, lc)
		out.bindAddr[lc] = addr
	}
	return out, nil
}

func (s *Server) compileListener(l *ir.Listener) (*listenerConfig, error) {
	lc := &listenerConfig{name: l.Name, gateway: l.Gateway, protocol: l.Protocol, scheme: "http", gen: s.configGen.Add(1)}
	switch l.Protocol {
	case ir.ProtocolHTTP:
	case ir.ProtocolTLS:
		lc.scheme = "tls"
		certs, err := compileCerts(l.Certificates)
		if err != nil {
			return nil, err
		}
		lc.certs = certs
		if lc.clientAuth, err = compileClientAuth(l.ClientValidation); err != nil {
			return nil, err
		}
	case ir.ProtocolTCP:
		lc.scheme = "tcp"
	case ir.ProtocolUDP:
		lc.scheme = "udp"
	case ir.ProtocolHTTPS:
		lc.scheme = "https"
		certs, err := compileCerts(l.Certificates)
		if err != nil {
			return nil, err
		}
		lc.certs = certs
		if lc.clientAuth, err = compileClientAuth(l.ClientValidation); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("protocol %q not supported", l.Protocol)
	}
	// Redirects that keep the listener's port must name the port clients
	// reach, which is the Gateway's port plus the offset.
	shifted := *l
	if l.Port != 0 {
		shifted.Port = uint32(int(l.Port) + s.opts.PortOffset)
	}
	// Routes the listener has now and that did not change are taken as
	// they are: a route change recompiles that route only. The table is
	// the last one compiled for the listener, bound or not, as a route
	// the config stream elides must be found there (ir.Route.Elided).
	tbl, err := router.CompileReusing(&shifted, s.registry, s.tables[l.Name])
	if err != nil {
		return nil, err
	}
	lc.table = tbl
	return lc, nil
}

// bindAddress is the host:port a listener binds, after the default address
// and the port offset.
func (s *Server) bindAddress(l *ir.Listener) (string, error) {
	host := l.Address
	if host == "" {
		host = s.opts.DefaultAddress
	}
	port := int(l.Port)
	if port != 0 {
		port += s.opts.PortOffset
	}
	if port != 0 && l.Port < 1024 {
		port += s.opts.LowPortOffset
	}
	if port < 0 || port > 65535 {
		return "", fmt.Errorf("port %d with offset %d is out of range", l.Port, s.opts.PortOffset)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// endpointSet lists every endpoint address the compiled tables use, so the
// registry can drop the others. It reads the compiled backends, not the IR
// (which a data plane does not keep: Options.ForgetRoutes), and it runs in
// the deferred tidy, off the apply path. Routes share compiled backends
// (router/sharedbackend.go): each is walked once.
func endpointSet(tables map[string]*router.Table) map[string]bool {
	routes := 0
	for _, t := range tables {
		routes += len(t.Routes())
	}
	keep := make(map[string]bool, routes)
	seen := make(map[*router.Backend]bool, routes/2)
	var addBackend func(b *router.Backend)
	addFilters := func(fs []router.Filter) {
		for i := range fs {
			if m := fs[i].Mirror; m != nil {
				addBackend(m.Backend)
			}
		}
	}
	addBackend = func(b *router.Backend) {
		if b == nil || seen[b] {
			return
		}
		seen[b] = true
		for _, ep := range b.Endpoints() {
			keep[ep.Addr] = true
		}
		addFilters(b.Filters)
	}
	for _, t := range tables {
		for _, rt := range t.Routes() {
			addFilters(rt.Filters)
			for _, b := range rt.Backends() {
				addBackend(b)
			}
		}
	}
	return keep
}
