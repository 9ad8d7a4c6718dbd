// Package cli holds what RAUTA's commands share: the common flags of the
// gateway commands, their environment equivalents (RAUTA_<FLAG>) and the
// logger.
package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/proxy"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/wellknown"
)

// Common are the flags every gateway command has.
type Common struct {
	Opts           gateway.Options
	AccessLog      bool
	LogLevel       string
	ControllerName string

	otlpEndpoint   string
	normalizePaths bool
	mergeSlashes   bool
	escapedSlashes string
	ejectFailed    bool
}

// Register adds the flags to fs.
func (c *Common) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Opts.Address, "address", "0.0.0.0", "address listeners bind when a Gateway has no address of its own")
	fs.IntVar(&c.Opts.PortOffset, "port-offset", 0, "added to every listener port, e.g. 8000 serves port 80 on 8080")
	fs.StringVar(&c.Opts.AdminAddr, "admin-addr", "127.0.0.1:9091", "address of every admin endpoint: /metrics, /healthz, /readyz, /config_dump, /status (keep it on loopback)")
	fs.StringVar(&c.Opts.MetricsAddr, "metrics-addr", ":9090", "address of /metrics, /healthz and /readyz only, for probes and Prometheus; empty disables")
	fs.BoolVar(&c.Opts.Profiling, "pprof", false, "also serve Go's profiles under /debug/pprof/ on the admin address")
	fs.DurationVar(&c.Opts.DrainPeriod, "drain-period", gateway.DefaultDrainPeriod, "after SIGTERM, how long to keep serving with /readyz at 503 while clients are told to reconnect (a second signal exits at once)")
	fs.DurationVar(&c.Opts.ShutdownTimeout, "shutdown-timeout", gateway.DefaultShutdownTimeout, "after the drain, how long in-flight requests may take to finish")
	c.registerLimits(fs)
	fs.BoolVar(&c.AccessLog, "access-log", true, "write one JSON line per request to stdout (docs/telemetry.md; lines the writer cannot keep up with are dropped and counted)")
	fs.StringVar(&c.otlpEndpoint, "otlp-endpoint", "", "OTLP/HTTP base URL traces are sent to (<url>/v1/traces); empty: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a full URL) or OTEL_EXPORTER_OTLP_ENDPOINT, and tracing is off when neither is set")
	fs.Float64Var(&c.Opts.Tracing.SampleRatio, "trace-sample-ratio", 0.01, "share of requests without a sampled traceparent that are traced (0 to 1); a client's sampled flag is always followed")
	fs.IntVar(&c.Opts.Tracing.QueueSize, "trace-queue-size", 2048, "spans waiting for export at most; past it spans are dropped and counted in rauta_trace_spans_dropped_total")
	fs.IntVar(&c.Opts.RequestTimings, "request-timings", proxy.DefaultRequestTimings, "timing records of the last requests kept for the admin address's /debug/requests, which the observer joins with the kernel's view (docs/observer.md); 0 turns them off")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.ControllerName, "controller-name", wellknown.DefaultControllerName, "serve GatewayClasses with this controllerName")
	fs.BoolVar(&c.normalizePaths, "normalize-paths", true, "normalise request paths before routing and forward the result (RFC 3986: dot segments, %2e, escapes); off lets /api/../secret match /api")
	fs.BoolVar(&c.mergeSlashes, "merge-slashes", true, "merge repeated slashes in request paths (/a//b -> /a/b), as Envoy Gateway does")
	fs.BoolVar(&c.ejectFailed, "eject-failed-endpoints", true, "leave an endpoint that refuses or resets connections out of load balancing for a while (passive health)")
	fs.DurationVar(&c.Opts.Health.BaseEjectionTime, "ejection-time", 30*time.Second, "how long a failed endpoint is left out the first time; repeated ejections add as much again, up to ten times")
	fs.IntVar(&c.Opts.Health.MaxEjectionPercent, "max-ejection-percent", 50, "the largest share of a backend's endpoints left out at once (one endpoint always may be)")
	fs.IntVar(&c.Opts.Health.RetryBudgetPercent, "retry-budget-percent", 20, "retries in flight to a backend, as a share of its requests in flight (at least 3 are always allowed)")
	fs.StringVar(&c.escapedSlashes, "escaped-slashes", string(router.EscapedSlashesKeep), "request paths with %2F, %5C or a backslash: keep (forward unchanged) or reject (400)")
}

// registerLimits adds the flags of the client and backend connection
// limits (docs/proxy.md, "Limits and timeouts"); their defaults are the
// proxy's.
func (c *Common) registerLimits(fs *flag.FlagSet) {
	o := &c.Opts
	fs.DurationVar(&o.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send a request head once it started one (408 and a close after)")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 120*time.Second, "how long a keep-alive client connection may wait for its next request")
	fs.IntVar(&o.MaxHeaderBytes, "max-header-bytes", 60<<10, "the largest request head in bytes, request line included (431 and a close over it)")
	fs.IntVar(&o.MaxHeaderFields, "max-header-fields", 100, "the most field lines in a request head (431 and a close over it)")
	fs.IntVar(&o.MaxResponseHeaderBytes, "max-response-header-bytes", 60<<10, "the largest response head in bytes a backend may send (502 over it)")
	fs.DurationVar(&o.ClientBodyTimeout, "client-body-timeout", 60*time.Second, "how long each wait for more of a request body may take, also after a 100 Continue (408 and a close after; an HTTP/2 stream: 408 or RST_STREAM; nginx's client_body_timeout)")
	fs.DurationVar(&o.ClientSendTimeout, "client-send-timeout", 60*time.Second, "how long each wait for a client to take more of a response may take (the connection is closed after; an HTTP/2 stream whose window stays shut is reset; nginx's send_timeout)")
	fs.DurationVar(&o.BackendResponseTimeout, "backend-response-timeout", 60*time.Second, "how long to wait for a backend's response head once the request is sent (504 after); a route's timeouts.request or backendRequest replaces it")
	fs.DurationVar(&o.BackendIdleTimeout, "backend-idle-timeout", 60*time.Second, "how long each wait on a backend for more of a response, or for it to take more of a request, may take (the exchange is aborted after)")
	fs.DurationVar(&o.StreamIdleTimeout, "stream-idle-timeout", 10*time.Minute, "how long a relayed connection (TLSRoute passthrough, TCPRoute) may move no byte either way before it is closed (nginx's stream proxy_timeout)")
	fs.DurationVar(&o.UpgradeIdleTimeout, "upgrade-idle-timeout", 5*time.Minute, "how long an upgraded connection (WebSocket) may move no byte either way before it is closed (Envoy's stream_idle_timeout; nginx's proxy_read_timeout is 60s)")
	fs.IntVar(&o.MaxStreamConns, "max-stream-connections", 4096, "the most connections one TLS passthrough or TCP listener relays at once; more are closed at accept and counted")
	fs.DurationVar(&o.UDPIdleTimeout, "udp-idle-timeout", 60*time.Second, "how long a UDP flow (one client address relayed to one endpoint) may pass no datagram either way before it ends (Envoy's udp_proxy idle_timeout)")
	fs.IntVar(&o.MaxUDPFlows, "max-udp-flows", 16384, "the most flows (client addresses) one UDP listener relays at once; a datagram that would start one more is dropped and counted")
	c.registerHTTP2Limits(fs)
}

// registerHTTP2Limits adds the flags of the HTTP/2 flood limits (h2.Limits;
// docs/http2.md); the defaults are h2's, Envoy's.
func (c *Common) registerHTTP2Limits(fs *flag.FlagSet) {
	o := &c.Opts
	fs.Func("h2-max-concurrent-streams", "the most HTTP/2 streams a client may have open at once, advertised and enforced (default 250)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("want a positive number")
		}
		o.MaxConcurrentStreams = uint32(n)
		return nil
	})
	l := &o.HTTP2
	fs.IntVar(&l.MaxQueuedControlFrames, "h2-max-queued-control-frames", 1000, "the most control frames (SETTINGS and PING acks, RST_STREAM, WINDOW_UPDATE) queued for an HTTP/2 client that does not read; past it the connection ends with GOAWAY ENHANCE_YOUR_CALM (CVE-2019-9512/9515)")
	fs.IntVar(&l.ResetBudget, "h2-reset-budget", 200, "the HTTP/2 streams of one connection that may end in a reset (refilled by completed streams and over 10 s); past it the connection ends (CVE-2019-9514, CVE-2023-44487 rapid reset)")
	fs.IntVar(&l.MaxContinuationFrames, "h2-max-continuation-frames", 24, "the most CONTINUATION frames of one HTTP/2 header block (CVE-2023-45288)")
	fs.IntVar(&l.MaxEmptyFrames, "h2-max-empty-frames", 1, "the most consecutive empty HTTP/2 DATA, HEADERS and CONTINUATION frames that do not end a stream (CVE-2019-9518)")
	fs.IntVar(&l.MaxPriorityFramesPerStream, "h2-max-priority-frames-per-stream", 100, "HTTP/2 PRIORITY frames allowed per stream opened, plus as many (CVE-2019-9513)")
	fs.IntVar(&l.MaxWindowUpdatesPerDataFrame, "h2-max-window-updates-per-data-frame", 10, "HTTP/2 WINDOW_UPDATE frames allowed per DATA frame sent, Envoy's formula (CVE-2019-9518)")
}

// Finish applies environment defaults, stamps the version and builds the
// logger.
func (c *Common) Finish(fs *flag.FlagSet, stdout, stderr io.Writer, version string) (*slog.Logger, error) {
	if err := EnvDefaults(fs); err != nil {
		return nil, err
	}
	c.Opts.Version = version
	es, err := router.ParseEscapedSlashes(c.escapedSlashes)
	if err != nil {
		return nil, err
	}
	c.Opts.Paths = router.PathOptions{Disable: !c.normalizePaths, KeepSlashes: !c.mergeSlashes, EscapedSlashes: es}
	c.Opts.Health.Disable = !c.ejectFailed
	c.Opts.Health.MaxEjectionTime = 10 * c.Opts.Health.BaseEjectionTime
	if p := c.Opts.Health.MaxEjectionPercent; p < 1 || p > 100 {
		return nil, fmt.Errorf("-max-ejection-percent %d: want 1 to 100", p)
	}
	if p := c.Opts.Health.RetryBudgetPercent; p < 1 || p > 100 {
		return nil, fmt.Errorf("-retry-budget-percent %d: want 1 to 100", p)
	}
	if c.Opts.StreamIdleTimeout <= 0 || c.Opts.UpgradeIdleTimeout <= 0 || c.Opts.MaxStreamConns < 1 {
		return nil, fmt.Errorf("-stream-idle-timeout %s, -upgrade-idle-timeout %s, -max-stream-connections %d: want more than 0",
			c.Opts.StreamIdleTimeout, c.Opts.UpgradeIdleTimeout, c.Opts.MaxStreamConns)
	}
	for name, v := range map[string]int{
		"h2-max-queued-control-frames": c.Opts.HTTP2.MaxQueuedControlFrames, "h2-reset-budget": c.Opts.HTTP2.ResetBudget,
		"h2-max-continuation-frames": c.Opts.HTTP2.MaxContinuationFrames, "h2-max-empty-frames": c.Opts.HTTP2.MaxEmptyFrames,
		"h2-max-priority-frames-per-stream": c.Opts.HTTP2.MaxPriorityFramesPerStream, "h2-max-window-updates-per-data-frame": c.Opts.HTTP2.MaxWindowUpdatesPerDataFrame,
	} {
		if v < 1 {
			return nil, fmt.Errorf("-%s %d: want 1 or more", name, v)
		}
	}
	if c.Opts.Health.BaseEjectionTime <= 0 {
		return nil, fmt.Errorf("-ejection-time %s: want more than 0", c.Opts.Health.BaseEjectionTime)
	}
	if c.AccessLog {
		c.Opts.AccessLog = stdout
	}
	if err := c.finishTracing(); err != nil {
		return nil, err
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: l})), nil
}

// finishTracing resolves the OTLP traces endpoint the way OpenTelemetry
// SDKs do: the flag (or RAUTA_OTLP_ENDPOINT), else
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as a full URL, else
// OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces. OTEL_SERVICE_NAME names the
// service.
func (c *Common) finishTracing() error {
	t := &c.Opts.Tracing
	switch {
	case c.otlpEndpoint != "":
		t.Endpoint = strings.TrimRight(c.otlpEndpoint, "/") + "/v1/traces"
	case os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		t.Endpoint = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	case os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "":
		t.Endpoint = strings.TrimRight(os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
	}
	if t.Endpoint != "" && !strings.HasPrefix(t.Endpoint, "http://") && !strings.HasPrefix(t.Endpoint, "https://") {
		return fmt.Errorf("OTLP endpoint %q: want an http:// or https:// URL", t.Endpoint)
	}
	if r := t.SampleRatio; r < 0 || r > 1 {
		return fmt.Errorf("-trace-sample-ratio %v: want 0 to 1", r)
	}
	if t.QueueSize < 1 {
		return fmt.Errorf("-trace-queue-size %d: want at least 1", t.QueueSize)
	}
	t.ServiceName = os.Getenv("OTEL_SERVICE_NAME")
	return nil
}

// EnvDefaults sets every flag not given on the command line from RAUTA_<NAME>.
func EnvDefaults(fs *flag.FlagSet) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		key := "RAUTA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", key, v, e)
			}
		}
	})
	return err
}

// SetDefault changes a registered flag's default (and its help text), for
// commands whose defaults differ from the common ones.
func SetDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	if f == nil {
		return
	}
	f.DefValue = value
	_ = f.Value.Set(value)
}
