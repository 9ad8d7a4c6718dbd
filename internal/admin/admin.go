// Package admin serves RAUTA's operational endpoints on ports of their own.
// The admin server (New), meant for loopback, has everything: Prometheus
// metrics, liveness and readiness, dumps of the active routing
// configuration and of the Gateway API status, and, when enabled, Go's
// profiles under /debug/pprof/. The probe server (NewProbes), meant for
// the pod address, has only /metrics, /healthz and /readyz, so kubelet and
// Prometheus reach it while configuration dumps and profiles stay local.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Source supplies what the endpoints show. Each function returns a value
// that is safe to encode concurrently (an immutable snapshot).
type Source struct {
	// Ready returns nil when the process serves what it was asked to, else
	// why not; /readyz answers 503 with that reason.
	Ready func() error
	// Config returns the active routing configuration (the IR).
	Config func() any
	// Status returns the Gateway API status of the last translation.
	Status func() any
	// Requests, when set, returns the timing records written after the
	// cursor after, at most limit (GET /debug/requests?after=&limit=);
	// Request the newest one of a request ID (GET /debug/requests/{id}).
	// Both hold no header value but X-Request-Id (docs/observer.md).
	Requests func(after uint64, limit int) any
	Request  func(id string) (any, bool)
}

// Bounds of a /debug/requests page.
const (
	defaultRequestsLimit = 1000
	maxRequestsLimit     = 10000
)

// Server is the admin HTTP server.
type Server struct {
	addr     string
	gatherer prometheus.Gatherer
	src      Source
	logger   *slog.Logger
	ln       net.Listener
	// profiling serves /debug/pprof/ (EnableProfiling).
	profiling bool
	// probesOnly: a probe server (NewProbes).
	probesOnly bool
}

// New listens on addr at once, so a port conflict is reported at start-up.
func New(addr string, gatherer prometheus.Gatherer, src Source, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{addr: addr, gatherer: gatherer, src: src, logger: logger, ln: ln}, nil
}

// NewProbes listens on addr at once and serves only /metrics, /healthz and
// /readyz (ready as Source.Ready): no configuration, status or profiles,
// whatever EnableProfiling says.
func NewProbes(addr string, gatherer prometheus.Gatherer, ready func() error, logger *slog.Logger) (*Server, error) {
	s, err := New(addr, gatherer, Source{Ready: ready}, logger)
	if err != nil {
		return nil, err
	}
	s.probesOnly = true
	return s, nil
}

// EnableProfiling adds Go's CPU, heap, allocation, goroutine and trace
// profiles under /debug/pprof/ (net/http/pprof). Off by default: a CPU
// profile or trace costs the data plane while it runs, and the admin port
// should stay on an internal address. A probe server never serves them.
func (s *Server) EnableProfiling() { s.profiling = true }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler routes the admin endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.src.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if s.probesOnly {
		return mux
	}
	mux.HandleFunc("GET /config_dump", s.dump(s.src.Config))
	mux.HandleFunc("GET /status", s.dump(s.src.Status))
	if s.src.Requests != nil && s.src.Request != nil {
		mux.HandleFunc("GET /debug/requests", s.requests)
		mux.HandleFunc("GET /debug/requests/{id}", s.request)
	}
	if s.profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index) // and every named profile: heap, allocs, goroutine, ...
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (s *Server) dump(get func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(get()); err != nil {
			s.logger.Error("admin: encode dump", "err", err)
		}
	}
}

// requests serves a page of request timing records.
func (s *Server) requests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "after: not a sequence number", http.StatusBadRequest)
			return
		}
		after = n
	}
	limit := defaultRequestsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			http.Error(w, "limit: not a positive number", http.StatusBadRequest)
			return
		}
		limit = min(n, maxRequestsLimit)
	}
	s.writeJSON(w, s.src.Requests(after, limit))
}

// request serves the newest timing record of one request ID.
func (s *Server) request(w http.ResponseWriter, r *http.Request) {
	v, ok := s.src.Request(r.PathValue("id"))
	if !ok {
		http.Error(w, "no such request id in the recent requests", http.StatusNotFound)
		return
	}
	s.writeJSON(w, v)
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.logger.Debug("admin: encode", "err", err)
	}
}

// Close releases the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
