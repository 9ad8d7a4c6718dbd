package proxy

import (
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/h2"
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
	// AccessLog receives one JSON line per request (docs/telemetry.md),
	// written by its own goroutine; nil turns it off.
	AccessLog io.Writer
	// Tracing configures OTLP traces; the zero value is off.
	Tracing TracingOptions
	// RequestTimings is the size of the ring of request timing records
	// the admin port serves at /debug/requests (reqtimings.go); 0 means
	// DefaultRequestTimings, negative turns it off.
	RequestTimings int
	// Registerer receives the request metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Logger receives serve errors the proxy cannot return (accept
	// failures, mirror failures at debug level); nil discards them.
	Logger *slog.Logger
	// ForgetRoutes keeps the applied configuration's routes out of Active
	// (and so out of /config_dump): once compiled, a data plane drops its
	// decoded routes (12.8 MB at 10,000 HTTPRoutes), and it does not keep
	// them only to show them; the controller's /config_dump has them.
	ForgetRoutes bool

	// ReadHeaderTimeout bounds how long a client may take to send a
	// request head once it has started one (slowloris); a head still
	// incomplete then is answered 408 and the connection closed. 0 means
	// 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; 0 means 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head, request line included
	// (answered with 431 and a close); 0 means 60 KiB, Envoy's default.
	MaxHeaderBytes int
	// MaxHeaderFields bounds the field lines of a request head, Host
	// included (431 and a close); 0 means 100, Envoy's default.
	MaxHeaderFields int
	// MaxResponseHeaderBytes bounds a backend's response head (502 past
	// it), on every forwarding path; 0 means 60 KiB, Envoy's default.
	MaxResponseHeaderBytes int
	// HTTP2 bounds what one HTTP/2 client may make the server queue and
	// count (control frames, resets, empty frames, CONTINUATION, PRIORITY,
	// WINDOW_UPDATE); zero fields take h2's defaults, Envoy's.
	// MaxHeaderFields, when HTTP2's is 0, bounds HTTP/2 header blocks too.
	HTTP2 h2.Limits
	// MaxConcurrentStreams is advertised to HTTP/2 clients and enforced;
	// 0 means 250.
	MaxConcurrentStreams uint32
	// ClientBodyTimeout bounds each wait for more of a request body
	// (nginx's client_body_timeout), also after a 100 Continue; a body
	// that stalls longer is answered 408 and the connection closed. 0
	// means 60s.
	ClientBodyTimeout time.Duration
	// ClientSendTimeout bounds each wait for a client to take more of a
	// response (nginx's send_timeout); a client that stops reading longer
	// loses its connection. 0 means 60s.
	ClientSendTimeout time.Duration
	// BackendResponseTimeout bounds the wait for a backend's response head
	// once the request is sent (nginx's proxy_read_timeout): 504 after it.
	// A route's timeouts.request or backendRequest replaces it, longer or
	// shorter. 0 means 60s.
	BackendResponseTimeout time.Duration
	// BackendIdleTimeout bounds each wait on a backend for more of a
	// response body, and for taking more of a request (nginx's
	// proxy_read_timeout and proxy_send_timeout): the exchange is aborted
	// after it. 0 means 60s.
	BackendIdleTimeout time.Duration
	// ShutdownTimeout bounds graceful shutdown of a closed listener and of
	// Run; 0 means 15s.
	ShutdownTimeout time.Duration
	// DialTimeout bounds connecting to a backend; 0 means 5s.
	DialTimeout time.Duration
	// StreamIdleTimeout closes a relayed connection (TLS passthrough, TCP)
	// after no byte moved either way for this long (nginx's stream
	// proxy_timeout); 0 means 10m.
	StreamIdleTimeout time.Duration
	// UpgradeIdleTimeout closes an upgraded connection (WebSocket) after
	// no byte moved either way for this long (Envoy's
	// stream_idle_timeout); 0 means 5m. A client or backend that sends
	// pings more often than this keeps it open.
	UpgradeIdleTimeout time.Duration
	// MaxStreamConns bounds the connections one relaying listener (TLS
	// passthrough, TCP) has open; one more is closed at accept and
	// counted (rauta_stream_connections_refused_total). Each costs two
	// 16 KiB buffers and three goroutines. 0 means 4096 (an nginx worker's
	// default is 512 connections, times its workers).
	MaxStreamConns int
	// UDPIdleTimeout ends a UDP flow (one client address) after no
	// datagram went either way for this long (Envoy's udp_proxy
	// idle_timeout; nginx's proxy_timeout is 10m); 0 means 60s.
	UDPIdleTimeout time.Duration
	// MaxUDPFlows bounds the flows one UDP listener holds; a datagram that
	// would start one more is dropped and counted
	// (rauta_udp_flows_refused_total). Each costs a socket and a
	// goroutine. 0 means 16384.
	MaxUDPFlows int
	// MirrorBodyLimit is the largest request body copied to a mirror;
	// requests with larger bodies are not mirrored. 0 means 64 KiB.
	MirrorBodyLimit int64
	// MirrorConcurrency bounds mirror requests in flight; more are dropped.
	// 0 means 64.
	MirrorConcurrency int
	// H2CWriteBatch bounds the bytes an h2c backend connection (gRPC)
	// gathers from its streams before one write sends them; a stream's
	// write into a full batch waits (h2cbatch.go). 0 means 64 KiB.
	H2CWriteBatch int
	// Paths says how request paths are normalised before routing; the
	// same path is forwarded. The zero value normalises (RFC 3986 dot
	// segments and escapes), merges repeated slashes and keeps escaped
	// slashes (docs/proxy.md, "Path normalisation").
	Paths router.PathOptions
	// Listen, when set, opens the socket of every TCP listener (HTTP,
	// HTTPS, TLS, TCP) in place of net.Listen("tcp", address); address
	// is the listener's bind address (listen.go). The mesh proxy serves
	// many listeners from one socket this way: it accepts, and hands
	// each connection to the listener of its original destination.
	Listen func(address string) (net.Listener, error)
	// Health configures passive health (ejecting endpoints that refuse or
	// reset) and the retry budget of the retry on another endpoint; the
	// zero value is the default (docs/load-balancing.md).
	Health lb.HealthOptions
	// Peers, when set, puts the Server in mesh mode: its
	// http_server_* series also carry the source and destination
	// workloads Peers names (peermetrics.go, docs/telemetry.md). A
	// gateway leaves it nil and keeps its label set.
	Peers Peers
	// MaxPeerValues bounds the distinct values of each workload label in
	// mesh mode; further ones are recorded as _OTHER and counted. 0 means
	// DefaultMaxPeerValues (256).
	MaxPeerValues int
}

func (o Options) withDefaults() Options {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 60 << 10
	}
	if o.MaxHeaderFields <= 0 {
		o.MaxHeaderFields = 100
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = h1.DefaultMaxResponseHead
	}
	if o.ClientBodyTimeout <= 0 {
		o.ClientBodyTimeout = 60 * time.Second
	}
	if o.ClientSendTimeout <= 0 {
		o.ClientSendTimeout = 60 * time.Second
	}
	if o.BackendResponseTimeout <= 0 {
		o.BackendResponseTimeout = 60 * time.Second
	}
	if o.BackendIdleTimeout <= 0 {
		o.BackendIdleTimeout = 60 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.MaxStreamConns <= 0 {
		o.MaxStreamConns = 4096
	}
	if o.UDPIdleTimeout <= 0 {
		o.UDPIdleTimeout = 60 * time.Second
	}
	if o.MaxUDPFlows <= 0 {
		o.MaxUDPFlows = 16384
	}
	if o.StreamIdleTimeout <= 0 {
		o.StreamIdleTimeout = 10 * time.Minute
	}
	if o.UpgradeIdleTimeout <= 0 {
		o.UpgradeIdleTimeout = 5 * time.Minute
	}
	if o.MirrorBodyLimit <= 0 {
		o.MirrorBodyLimit = 64 << 10
	}
	if o.MirrorConcurrency <= 0 {
		o.MirrorConcurrency = 64
	}
	if o.H2CWriteBatch <= 0 {
		o.H2CWriteBatch = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
