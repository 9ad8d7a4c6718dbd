package proxy

import (
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
)

// Options configure a Server. The zero value serves on 0.0.0.0 with access
// logs off and metrics on a private registry.
type Options struct {
	// DefaultAddress is the bind address of listeners whose Address is
	// empty, e.g. "127.0.0.1"; "" binds every address.
	DefaultAddress string
	// PortOffset is added to every listener port, so tests and demos can run
	// unprivileged (80 -> 8080 with an offset of 8000).
	PortOffset int
	// LowPortOffset is added to listener ports below 1024 when binding
	// only: a data-plane pod runs without privileges and binds 80 as 10080,
	// while clients still reach port 80 through the Kubernetes Service that
	// maps it, so redirects keep the listener's port.
	LowPortOffset int
	// AccessLog receives one JSON line per request; nil turns it off.
	AccessLog io.Writer
	// Registerer receives the request metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Logger receives serve errors the proxy cannot return (accept
	// failures, mirror failures at debug level); nil discards them.
	Logger *slog.Logger

	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers (slowloris); 0 means 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; 0 means 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers (answered with 431); 0 means
	// 64 KiB.
	MaxHeaderBytes int
	// ShutdownTimeout bounds graceful shutdown of a closed listener and of
	// Run; 0 means 15s.
	ShutdownTimeout time.Duration
	// DialTimeout bounds connecting to a backend; 0 means 5s.
	DialTimeout time.Duration
	// MirrorBodyLimit is the largest request body copied to a mirror;
	// requests with larger bodies are not mirrored. 0 means 64 KiB.
	MirrorBodyLimit int64
	// MirrorConcurrency bounds mirror requests in flight; more are dropped.
	// 0 means 64.
	MirrorConcurrency int
	// Paths says how request paths are normalised before routing; the
	// same path is forwarded. The zero value normalises (RFC 3986 dot
	// segments and escapes), merges repeated slashes and keeps escaped
	// slashes (docs/proxy.md, "Path normalisation").
	Paths router.PathOptions
	// Health configures passive health (ejecting endpoints that refuse or
	// reset) and the retry budget of the retry on another endpoint; the
	// zero value is the default (docs/load-balancing.md).
	Health lb.HealthOptions
}

// maxRequestURI is the longest request-target served; longer ones get 414.
const maxRequestURI = 8 << 10

func (o Options) withDefaults() Options {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.MirrorBodyLimit <= 0 {
		o.MirrorBodyLimit = 64 << 10
	}
	if o.MirrorConcurrency <= 0 {
		o.MirrorConcurrency = 64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
