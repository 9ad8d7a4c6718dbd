package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/upstream"
)

// Server serves ir.Snapshots. Create it with New, give it a configuration
// with Apply and serve with Run; Apply may be called again at any time.
type Server struct {
	opts      Options
	registry  *lb.Registry
	metrics   *metrics
	fwd       *forwarder
	accessLog *accessLog
	// tracer is nil when tracing is off (spans.go).
	tracer *tracer
	ids    *requestIDs
	date   h1.DateCache
	// timings is the ring of request timing records; nil when off.
	timings *requestTimings
	// resolved holds the metrics of the routes and backends that served
	// requests (routemetrics.go); it has its own lock.
	resolved resolvedMetrics
	// configGen numbers compiled listener configurations (listenerConfig.gen).
	configGen atomic.Uint64

	// mu serializes Apply, Run's start and stop, and guards the fields
	// below it. Requests never take it.
	mu       sync.Mutex
	sockets  map[string]*socket // by bind key
	byName   map[string]*socket // by listener name
	running  bool
	stopped  bool
	draining bool
	// serving counts serve loops and graceful closes, so Run returns only
	// after every socket is done.
	serving sync.WaitGroup
	// tidyConfig is the last applied configuration while tidy is due;
	// tidyFirst is when the first Apply since the last tidy came
	// (tidy.go).
	tidyConfig *compiled
	tidyFirst  time.Time
	tidyTimer  *time.Timer

	// tables is the last compiled table of each listener of the applied
	// configuration, by name, bound or not: the next Apply reuses their
	// routes, and the tidy keeps their endpoints.
	tables map[string]*router.Table

	active atomic.Pointer[ir.Snapshot]
	// cut counts the client connections a graceful close had to force
	// closed when ShutdownTimeout ended.
	cut atomic.Int64
	// idleGrace is the const idleGrace; tests change it.
	idleGrace time.Duration
	// workers serve accepted connections on goroutines that served
	// earlier ones (workers.go).
	workers *workers
}

// New returns a Server with no listeners.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if _, err := router.ParseEscapedSlashes(string(opts.Paths.EscapedSlashes)); err != nil {
		return nil, err
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newServerMetrics(reg, opts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		registry:  lb.NewRegistryWith(opts.Health),
		metrics:   m,
		sockets:   map[string]*socket{},
		byName:    map[string]*socket{},
		idleGrace: idleGrace,
		workers:   newWorkers(maxIdleWorkers, workersIdleTime),
		resolved: resolvedMetrics{
			routes:   map[routeKey]*routeMetrics{},
			backends: map[string]*backendMetrics{},
		},
	}
	if err := reg.Register(streamCollector{s}); err != nil {
		return nil, err
	}
	if err := reg.Register(udpCollector{s}); err != nil {
		return nil, err
	}
	s.ids = newRequestIDs()
	s.timings = newRequestTimings(opts.RequestTimings)
	s.fwd = newForwarder(opts, m, opts.Logger)
	if err := reg.Register(upstream.NewOpenConnsCollector(s.fwd.pool)); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if opts.AccessLog != nil {
		s.accessLog = newAccessLog(opts.AccessLog, m.logDropped)
	}
	if opts.Tracing.Endpoint != "" {
		s.tracer = newTracer(opts.Tracing, m, opts.Logger)
		s.fwd.tracer = s.tracer
	}
	s.active.Store(&ir.Snapshot{})
	return s, nil
}

// Apply makes snap the served configuration. It compiles everything first;
// on a compile error it keeps the old configuration and returns an error
// naming the listener and route. Then it closes the sockets of removed
// listeners gracefully, opens sockets for new ones and publishes each
// listener's config atomically; sockets of unchanged listeners stay open.
// A listener whose socket cannot be bound is reported in the returned error
// as a *BindError (errors.As finds each one) while the others are served.
func (s *Server) Apply(snap *ir.Snapshot) error {
	if snap == nil {
		snap = &ir.Snapshot{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("apply: server stopped")
	}
	c, err := s.compile(snap)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	s.attachMetrics(c)

	// Decide which sockets stay, then close the others before binding, so a
	// listener moving between names or protocols can take its address back.
	keep := map[string]*socket{}
	for _, lc := range c.listeners {
		key := socketKey(c.bindAddr[lc], lc)
		if old, ok := s.sockets[key]; ok && old.protocol == lc.protocol {
			keep[key] = old
		}
	}
	for key, sock := range s.sockets {
		if keep[key] != sock {
			s.closeGracefully(sock)
		}
	}

	s.tables = make(map[string]*router.Table, len(c.listeners))
	for _, lc := range c.listeners {
		s.tables[lc.name] = lc.table
	}

	var errs []error
	sockets := map[string]*socket{}
	byName := map[string]*socket{}
	served := &ir.Snapshot{}
	for i, lc := range c.listeners {
		key := socketKey(c.bindAddr[lc], lc)
		sock := keep[key]
		if sock == nil {
			sock, err = s.bind(c.bindAddr[lc], lc)
			if err != nil {
				errs = append(errs, &BindError{Listener: lc.name, Err: err})
				continue
			}
			if s.running {
				s.startServing(sock)
			}
		}
		sock.cfg.Store(lc)
		sockets[key] = sock
		byName[lc.name] = sock
		l := snap.Listeners[i]
		if s.opts.ForgetRoutes {
			l.VirtualHosts = withoutRoutes(l.VirtualHosts)
		}
		served.Listeners = append(served.Listeners, l)
	}
	s.sockets, s.byName = sockets, byName
	s.active.Store(served)
	s.scheduleTidy(c)
	if len(errs) > 0 {
		return fmt.Errorf("apply: %w", errors.Join(errs...))
	}
	return nil
}

// socketKey identifies a socket across snapshots. Port 0 (an ephemeral port,
// for tests) is keyed by listener name too, as each such listener gets its
// own port.
func socketKey(addr string, lc *listenerConfig) string {
	key := transport(lc.protocol) + " " + addr
	if strings.HasSuffix(addr, ":0") {
		return key + "#" + lc.name
	}
	return key
}

// Run serves until ctx ends, then shuts down gracefully: listeners stop
// accepting, in-flight requests finish and mirrors drain, for up to
// Options.ShutdownTimeout, after which what is left (including WebSocket
// and other upgraded connections) is closed. It returns nil after a clean
// shutdown. Call Drain some time before ctx ends so that clients move away
// first (see drain.go).
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.stopped {
		s.mu.Unlock()
		return errors.New("run: server already started")
	}
	s.running = true
	for _, sock := range s.sockets {
		s.startServing(sock)
	}
	s.mu.Unlock()

	<-ctx.Done()

	s.mu.Lock()
	s.stopped = true
	for _, sock := range s.sockets {
		s.closeGracefully(sock)
	}
	s.sockets, s.byName = map[string]*socket{}, map[string]*socket{}
	s.mu.Unlock()
	deadline := time.Now().Add(s.opts.ShutdownTimeout)
	s.serving.Wait()
	s.workers.close()
	s.cut.Add(int64(s.fwd.close(time.Until(deadline))))
	if s.accessLog != nil {
		s.accessLog.close(max(time.Until(deadline), time.Second))
	}
	if s.tracer != nil {
		s.tracer.close(max(time.Until(deadline), time.Second))
	}
	return nil
}

// Addr returns the bound address of a listener, nil when it is not served.
func (s *Server) Addr(listener string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sock, ok := s.byName[listener]; ok {
		return sock.addr()
	}
	return nil
}

// Active returns the configuration being served: the last applied snapshot
// without the listeners whose socket could not be bound, and with
// Options.ForgetRoutes without routes. Callers must not modify it.
func (s *Server) Active() *ir.Snapshot { return s.active.Load() }

// withoutRoutes copies vhs without their routes (Options.ForgetRoutes).
func withoutRoutes(vhs []ir.VirtualHost) []ir.VirtualHost {
	if vhs == nil {
		return nil
	}
	out := make([]ir.VirtualHost, len(vhs))
	for i, vh := range vhs {
		vh.Routes = nil
		out[i] = vh
	}
	return out
}
