// Package observe is the RAUTA eBPF HTTP observer ("rauta observe"): kernel
// programs capture the first bytes of HTTP/1.x requests and responses on TC
// (or XDP) hooks, userspace parses and pairs them, processors flag slow
// responses, 5xx spikes and failing kubelet probes, and exporters publish
// Prometheus metrics, JSON lines and OTLP. See docs/observer.md.
package observe

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/join"
)

// Config is everything "rauta observe" can be told. RegisterFlags binds
// every field to a flag whose default comes from the environment.
type Config struct {
	// Interfaces (RAUTA_INTERFACE, comma-separated) are exact names, glob
	// patterns (veth*, cali*) and the keyword auto (every pod-side veth);
	// see selector.go.
	Interfaces []string
	// PodCIDRs (RAUTA_POD_CIDR, comma-separated) narrow patterns and auto
	// to links routed into these ranges.
	PodCIDRs []string
	// MaxInterfaces caps the attached interfaces (RAUTA_MAX_INTERFACES).
	MaxInterfaces int
	// Netns is a network namespace path whose interfaces are observed
	// (RAUTA_NETNS); empty means the observer's own.
	Netns    string
	Mode     string // RAUTA_OBSERVE_MODE: tc (default), tcx, clsact, xdp
	LogLevel string // RAUTA_LOG_LEVEL; the CLI builds the logger from it

	MetricsAddr  string        // RAUTA_METRICS_ADDR (":9090"; "off" disables)
	OTLPEndpoint string        // OTEL_EXPORTER_OTLP_ENDPOINT (empty disables)
	OTLPInterval time.Duration // RAUTA_OTLP_INTERVAL
	// Traces: spans of exchanges whose request carried a sampled
	// traceparent go to the OTLP endpoint too (RAUTA_TRACES).
	Traces bool
	// TraceSampleRatio: share of exchanges without a traceparent that
	// start a trace (RAUTA_TRACE_SAMPLE_RATIO; 0, the default, never).
	TraceSampleRatio float64
	// TraceQueueSize bounds the spans waiting for export
	// (RAUTA_TRACE_QUEUE_SIZE).
	TraceQueueSize int
	// HTTP2: follow h2c connections from their client preface and decode
	// them (RAUTA_HTTP2, on).
	HTTP2         bool
	JSONEvents    bool // RAUTA_JSON_EVENTS: processor events on stdout
	JSONExchanges bool // RAUTA_JSON_EXCHANGES: every exchange on stdout

	EnrichFile string // RAUTA_ENRICH_FILE: static IP map (YAML/JSON)
	Kube       string // RAUTA_KUBE: auto (in-cluster if possible), on, off
	Kubeconfig string // KUBECONFIG, for running outside a pod
	NodeName   string // NODE_NAME: limits the Pod informer to this node

	RingBytes           int           // RAUTA_RING_BYTES: ring buffer size
	RingWakeupBytes     int           // RAUTA_RING_WAKEUP_BYTES: batch wakeups
	PollInterval        time.Duration // RAUTA_POLL_INTERVAL: reader poll period
	ReaderNice          int           // RAUTA_READER_NICE: nice value of the reader thread
	MaxConns            int           // RAUTA_MAX_CONNS: pairing LRU size
	MaxPending          int           // RAUTA_MAX_PIPELINED: per connection
	RequestTimeout      time.Duration // RAUTA_REQUEST_TIMEOUT
	MaxServices         int           // RAUTA_MAX_SERVICES: label cardinality
	MaxRoutesPerService int           // RAUTA_MAX_ROUTES: label cardinality
	// LabelIdle: a service or route label value unseen this long may make
	// room for a new one when its budget is full (RAUTA_LABEL_IDLE).
	LabelIdle time.Duration

	Slow  detect.SlowConfig
	Spike detect.SpikeConfig
	Probe detect.ProbeConfig
	// TLS: plaintext from inside TLS libraries (tls.go).
	TLS TLSConfig

	// GatewayAdmin (RAUTA_GATEWAY_ADMIN, comma-separated) are RAUTA
	// gateways' admin URLs whose request timing records are joined with
	// the exchanges seen here (join.go); empty: no join.
	GatewayAdmin []string
	// GatewayNetns (RAUTA_GATEWAY_NETNS) is the network namespace path the
	// admin URLs are reached from (a gateway pod's loopback); empty: the
	// observer's own. A glob pattern (/var/run/netns/cni-*) polls them in
	// every matching namespace that answers (join.Discover), matched again
	// every GatewayNetnsRescan, at most GatewayNetnsMax at once.
	GatewayNetns       string
	GatewayNetnsRescan time.Duration
	GatewayNetnsMax    int
	// JoinPollInterval (RAUTA_JOIN_POLL_INTERVAL) is how often each
	// gateway's records are fetched.
	JoinPollInterval time.Duration
	// Join bounds the join (RAUTA_JOIN_MAX_AGE, RAUTA_JOIN_MAX_LEGS,
	// RAUTA_JOIN_RESULTS).
	Join join.Config

	// Output receives JSON lines; nil means os.Stdout. Not a flag.
	Output io.Writer

	envErrs []error
}

// Defaults returns a Config with every default set and no environment read.
func Defaults() Config {
	return Config{
		Mode:         string(capture.ModeTC),
		LogLevel:     "info",
		MetricsAddr:  ":9090",
		OTLPInterval: 10 * time.Second,
		Traces:       true,
		// The gateway's queue size: a burst of sampled requests a second
		// of batching holds without drops.
		TraceQueueSize: 2048,
		JSONEvents:     true,
		HTTP2:          true,
		Kube:           "auto",
		RingBytes:      8 << 20,
		// A quarter of the ring: below it the reader's poll picks records
		// up. Every wakeup is an irq_work and a cross-CPU wakeup, which in
		// a VM cost the producing program ~25 us; at 64 KiB (one per ~110
		// events) that was a quarter of the program's time per packet.
		RingWakeupBytes:     2 << 20,
		PollInterval:        20 * time.Millisecond,
		MaxConns:            65536,
		MaxPending:          32,
		RequestTimeout:      30 * time.Second,
		MaxServices:         256,
		MaxRoutesPerService: 100,
		LabelIdle:           10 * time.Minute,
		// Two TCX links (or two clsact filters and a lock) per interface;
		// a node runs at most a few hundred pods.
		MaxInterfaces: 1024,
		Slow: detect.SlowConfig{
			Multiplier: 2, MinSamples: 100, Window: 1000, BaselinePeriod: 5 * time.Minute,
			Floor: 50 * time.Millisecond, Interval: 30 * time.Second, MinCount: 3, Alpha: 1e-4, MaxRoutes: 2048,
		},
		Spike: detect.SpikeConfig{Window: 10 * time.Second, BaselineWindows: 30, MinRequests: 50, Multiplier: 3, MinRate: 0.05, Alpha: 1e-4},
		// The kubelet's timeoutSeconds default.
		Probe: detect.ProbeConfig{Timeout: time.Second},
		TLS:   defaultTLS(),
		// Four fetches a second: a record waits at most that long, and
		// the legs it needs are kept seconds (join.DefaultConfig).
		JoinPollInterval:   250 * time.Millisecond,
		GatewayNetnsRescan: 5 * time.Second,
		GatewayNetnsMax:    256,
		Join:               join.DefaultConfig(),
	}
}

// RegisterFlags binds c to fs. Each flag's default is the environment
// variable named in its help, else the built-in default. An invalid
// environment value is reported by Run.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := Defaults()
	e := &envReader{}
	fs.Func("interface", `interfaces to observe, comma-separated: names, glob patterns (veth*, cali*), or "auto" for every pod-side veth (not loopback, not the default-route uplink); patterns and auto follow links as they come and go (env RAUTA_INTERFACE)`, func(s string) error {
		c.Interfaces = splitList(s)
		return nil
	})
	c.Interfaces = splitList(os.Getenv("RAUTA_INTERFACE"))
	c.TLS.registerFlags(fs, e)
	fs.Func("pod-cidr", "comma-separated CIDRs: patterns and auto take only links that a route (theirs, or their bridge's) leads into one of them (env RAUTA_POD_CIDR)", func(s string) error {
		c.PodCIDRs = splitList(s)
		return nil
	})
	c.PodCIDRs = splitList(os.Getenv("RAUTA_POD_CIDR"))
	fs.Func("gateway-admin", "comma-separated admin URLs of RAUTA gateways (http://127.0.0.1:9901) whose request timing records are joined with the exchanges seen here: rauta_gateway_request_phase_duration_seconds and /debug/requests/{id} on the metrics address (env RAUTA_GATEWAY_ADMIN)", func(s string) error {
		c.GatewayAdmin = splitList(s)
		return nil
	})
	c.GatewayAdmin = splitList(os.Getenv("RAUTA_GATEWAY_ADMIN"))
	fs.StringVar(&c.GatewayNetns, "gateway-netns", e.str("RAUTA_GATEWAY_NETNS", ""), "network namespace path the gateway admin URLs are reached from, e.g. a gateway pod's /proc/PID/ns/net; a glob pattern (/var/run/netns/cni-*) polls them in every matching namespace where a gateway answers (env RAUTA_GATEWAY_NETNS)")
	fs.DurationVar(&c.GatewayNetnsRescan, "gateway-netns-rescan", e.dur("RAUTA_GATEWAY_NETNS_RESCAN", d.GatewayNetnsRescan), "with a -gateway-netns pattern, how often it is matched again and namespaces without an answering gateway are probed again (env RAUTA_GATEWAY_NETNS_RESCAN)")
	fs.IntVar(&c.GatewayNetnsMax, "gateway-netns-max", e.integer("RAUTA_GATEWAY_NETNS_MAX", d.GatewayNetnsMax), "with a -gateway-netns pattern, most namespaces polled at once (env RAUTA_GATEWAY_NETNS_MAX)")
	fs.DurationVar(&c.JoinPollInterval, "join-poll-interval", e.dur("RAUTA_JOIN_POLL_INTERVAL", d.JoinPollInterval), "how often each gateway's request timing records are fetched (env RAUTA_JOIN_POLL_INTERVAL)")
	fs.DurationVar(&c.Join.MaxAge, "join-max-age", e.dur("RAUTA_JOIN_MAX_AGE", d.Join.MaxAge), "how long a gateway record waits for the exchanges it joins; also how long exchanges are kept for it, one to two times this (env RAUTA_JOIN_MAX_AGE)")
	fs.IntVar(&c.Join.MaxLegs, "join-max-legs", e.integer("RAUTA_JOIN_MAX_LEGS", d.Join.MaxLegs), "exchanges kept for the join per generation (two are kept) (env RAUTA_JOIN_MAX_LEGS)")
	fs.IntVar(&c.Join.MaxResults, "join-results", e.integer("RAUTA_JOIN_RESULTS", d.Join.MaxResults), "joined requests kept for lookups by request ID (env RAUTA_JOIN_RESULTS)")
	fs.IntVar(&c.MaxInterfaces, "max-interfaces", e.integer("RAUTA_MAX_INTERFACES", d.MaxInterfaces), "most interfaces attached at once; further selected ones are logged and counted, not observed (env RAUTA_MAX_INTERFACES)")
	fs.StringVar(&c.Netns, "netns", e.str("RAUTA_NETNS", ""), "network namespace path whose interfaces are observed (env RAUTA_NETNS)")
	fs.StringVar(&c.Mode, "mode", e.str("RAUTA_OBSERVE_MODE", d.Mode), "hooks: tc (TCX on 6.6+, clsact before), tcx, clsact or xdp (env RAUTA_OBSERVE_MODE)")
	fs.StringVar(&c.LogLevel, "log-level", e.str("RAUTA_LOG_LEVEL", d.LogLevel), "debug, info, warn or error (env RAUTA_LOG_LEVEL)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", e.str("RAUTA_METRICS_ADDR", d.MetricsAddr), `Prometheus listen address, "off" to disable (env RAUTA_METRICS_ADDR)`)
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", e.str("OTEL_EXPORTER_OTLP_ENDPOINT", ""), "OTLP/HTTP base URL; empty disables (env OTEL_EXPORTER_OTLP_ENDPOINT)")
	fs.DurationVar(&c.OTLPInterval, "otlp-interval", e.dur("RAUTA_OTLP_INTERVAL", d.OTLPInterval), "OTLP export interval (env RAUTA_OTLP_INTERVAL)")
	fs.BoolVar(&c.Traces, "traces", e.boolean("RAUTA_TRACES", d.Traces), "with an OTLP endpoint, export a SERVER span for each exchange whose request carried a sampled W3C traceparent, in the caller's trace, to <endpoint>/v1/traces (env RAUTA_TRACES)")
	fs.Float64Var(&c.TraceSampleRatio, "trace-sample-ratio", e.float("RAUTA_TRACE_SAMPLE_RATIO", d.TraceSampleRatio), "share (0 to 1) of exchanges without a traceparent that start a trace of their own; 0 never invents traces (env RAUTA_TRACE_SAMPLE_RATIO)")
	fs.IntVar(&c.TraceQueueSize, "trace-queue-size", e.integer("RAUTA_TRACE_QUEUE_SIZE", d.TraceQueueSize), "spans waiting for export at most; past it spans are dropped and counted in rauta_observer_spans_dropped_total (env RAUTA_TRACE_QUEUE_SIZE)")
	fs.BoolVar(&c.HTTP2, "http2", e.boolean("RAUTA_HTTP2", d.HTTP2), "decode h2c (cleartext HTTP/2, gRPC) connections seen from their client preface; off saves a kernel map lookup per non-HTTP/1 segment (env RAUTA_HTTP2)")
	fs.BoolVar(&c.JSONEvents, "json-events", e.boolean("RAUTA_JSON_EVENTS", d.JSONEvents), "write processor events as JSON lines to stdout (env RAUTA_JSON_EVENTS)")
	fs.BoolVar(&c.JSONExchanges, "json-exchanges", e.boolean("RAUTA_JSON_EXCHANGES", false), "write every paired exchange as a JSON line to stdout (env RAUTA_JSON_EXCHANGES)")
	fs.StringVar(&c.EnrichFile, "enrich-file", e.str("RAUTA_ENRICH_FILE", ""), "static IP -> pod/namespace/service map, YAML or JSON (env RAUTA_ENRICH_FILE)")
	fs.StringVar(&c.Kube, "kube", e.str("RAUTA_KUBE", d.Kube), "Kubernetes enrichment: auto, on or off (env RAUTA_KUBE)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", e.str("KUBECONFIG", ""), "kubeconfig for running outside a pod (env KUBECONFIG)")
	fs.StringVar(&c.NodeName, "node-name", e.str("NODE_NAME", ""), "this node's name, limits the Pod informer (env NODE_NAME)")
	fs.IntVar(&c.RingBytes, "ring-bytes", e.integer("RAUTA_RING_BYTES", d.RingBytes), "ring buffer size, power of two (env RAUTA_RING_BYTES)")
	fs.IntVar(&c.RingWakeupBytes, "ring-wakeup-bytes", e.integer("RAUTA_RING_WAKEUP_BYTES", d.RingWakeupBytes), "wake the reader once this much is queued; 0 wakes per event (env RAUTA_RING_WAKEUP_BYTES)")
	fs.DurationVar(&c.PollInterval, "poll-interval", e.dur("RAUTA_POLL_INTERVAL", d.PollInterval), "how often the reader picks up events below the wakeup threshold (env RAUTA_POLL_INTERVAL)")
	fs.IntVar(&c.ReaderNice, "reader-nice", e.integer("RAUTA_READER_NICE", d.ReaderNice), "nice value (0-19) of the thread that reads and processes events; the ring buffer holds events while the node's own work runs first (env RAUTA_READER_NICE)")
	fs.IntVar(&c.MaxConns, "max-conns", e.integer("RAUTA_MAX_CONNS", d.MaxConns), "connections tracked for pairing (env RAUTA_MAX_CONNS)")
	fs.IntVar(&c.MaxPending, "max-pipelined", e.integer("RAUTA_MAX_PIPELINED", d.MaxPending), "pipelined requests kept per connection (env RAUTA_MAX_PIPELINED)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", e.dur("RAUTA_REQUEST_TIMEOUT", d.RequestTimeout), "a request without response after this is a timeout (env RAUTA_REQUEST_TIMEOUT)")
	fs.IntVar(&c.MaxServices, "max-services", e.integer("RAUTA_MAX_SERVICES", d.MaxServices), "distinct service label values (env RAUTA_MAX_SERVICES)")
	fs.IntVar(&c.MaxRoutesPerService, "max-routes", e.integer("RAUTA_MAX_ROUTES", d.MaxRoutesPerService), "distinct route label values per service (env RAUTA_MAX_ROUTES)")
	fs.DurationVar(&c.LabelIdle, "label-idle", e.dur("RAUTA_LABEL_IDLE", d.LabelIdle), "a service or route label unseen this long makes room for a new one when its budget is full (env RAUTA_LABEL_IDLE)")
	fs.Float64Var(&c.Slow.Multiplier, "slow-multiplier", e.float("RAUTA_SLOW_MULTIPLIER", d.Slow.Multiplier), "slow = latency above this x the route's baseline p99 (env RAUTA_SLOW_MULTIPLIER)")
	fs.IntVar(&c.Slow.MinSamples, "slow-min-samples", e.integer("RAUTA_SLOW_MIN_SAMPLES", d.Slow.MinSamples), "exchanges before a route's p99 is trusted (env RAUTA_SLOW_MIN_SAMPLES)")
	fs.IntVar(&c.Slow.Window, "slow-window", e.integer("RAUTA_SLOW_WINDOW", d.Slow.Window), "latencies per baseline block; the baseline is the median p99 of the last three blocks (env RAUTA_SLOW_WINDOW)")
	fs.DurationVar(&c.Slow.BaselinePeriod, "slow-baseline-period", e.dur("RAUTA_SLOW_BASELINE_PERIOD", d.Slow.BaselinePeriod), "a baseline block spans at least this long (env RAUTA_SLOW_BASELINE_PERIOD)")
	fs.DurationVar(&c.Slow.Floor, "slow-floor", e.dur("RAUTA_SLOW_FLOOR", d.Slow.Floor), "nothing faster than this is slow (env RAUTA_SLOW_FLOOR)")
	fs.DurationVar(&c.Slow.Interval, "slow-interval", e.dur("RAUTA_SLOW_INTERVAL", d.Slow.Interval), "at most one slow_response event per route per interval, with the interval's slow count (env RAUTA_SLOW_INTERVAL)")
	fs.IntVar(&c.Slow.MinCount, "slow-min-count", e.integer("RAUTA_SLOW_MIN_COUNT", d.Slow.MinCount), "slow responses an interval needs before an event (env RAUTA_SLOW_MIN_COUNT)")
	fs.Float64Var(&c.Slow.Alpha, "slow-alpha", e.float("RAUTA_SLOW_ALPHA", d.Slow.Alpha), "and the slow count must have a binomial probability below this if 1% were slow (env RAUTA_SLOW_ALPHA)")
	fs.IntVar(&c.Slow.MaxRoutes, "slow-max-routes", e.integer("RAUTA_SLOW_MAX_ROUTES", d.Slow.MaxRoutes), "routes with a latency baseline (each up to slow-window x 4 bytes); the least recently seen makes room (env RAUTA_SLOW_MAX_ROUTES)")
	fs.DurationVar(&c.Spike.Window, "spike-window", e.dur("RAUTA_SPIKE_WINDOW", d.Spike.Window), "5xx rate window (env RAUTA_SPIKE_WINDOW)")
	fs.IntVar(&c.Spike.BaselineWindows, "spike-baseline-windows", e.integer("RAUTA_SPIKE_BASELINE_WINDOWS", d.Spike.BaselineWindows), "windows in the 5xx baseline (env RAUTA_SPIKE_BASELINE_WINDOWS)")
	fs.IntVar(&c.Spike.MinRequests, "spike-min-requests", e.integer("RAUTA_SPIKE_MIN_REQUESTS", d.Spike.MinRequests), "requests a window and the baseline need (env RAUTA_SPIKE_MIN_REQUESTS)")
	fs.Float64Var(&c.Spike.Multiplier, "spike-multiplier", e.float("RAUTA_SPIKE_MULTIPLIER", d.Spike.Multiplier), "spike = window error rate (5xx, resets, timeouts) at least this x baseline (env RAUTA_SPIKE_MULTIPLIER)")
	fs.Float64Var(&c.Spike.MinRate, "spike-min-rate", e.float("RAUTA_SPIKE_MIN_RATE", d.Spike.MinRate), "and at least this error rate (env RAUTA_SPIKE_MIN_RATE)")
	fs.Float64Var(&c.Spike.Alpha, "spike-alpha", e.float("RAUTA_SPIKE_ALPHA", d.Spike.Alpha), "and the window's error count must have a binomial probability below this at the baseline's upper bound (env RAUTA_SPIKE_ALPHA)")
	fs.DurationVar(&c.Probe.Timeout, "probe-timeout", e.dur("RAUTA_PROBE_TIMEOUT", d.Probe.Timeout), "a kubelet probe unanswered this long has failed, when the pod's probe spec is not known (env RAUTA_PROBE_TIMEOUT)")
	c.envErrs = e.errs
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	if len(c.Interfaces) == 0 {
		errs = append(errs, errors.New(`interface: at least one interface, pattern or "auto" is required (flag -interface or RAUTA_INTERFACE)`))
	}
	sel, err := c.selector()
	if err != nil {
		errs = append(errs, err)
	}
	if _, err := capture.ParseMode(c.Mode); err != nil {
		errs = append(errs, err)
	}
	if c.Mode == string(capture.ModeXDP) {
		switch {
		case sel != nil && sel.auto:
			errs = append(errs, errXDPAuto)
		case len(c.Interfaces) == 1 && !isPattern(c.Interfaces[0]):
			errs = append(errs, errXDPOneInterface(c.Interfaces[0]))
		}
	}
	if c.MaxInterfaces <= 0 {
		errs = append(errs, fmt.Errorf("max-interfaces %d: must be positive", c.MaxInterfaces))
	} else if sel != nil && len(sel.names) > c.MaxInterfaces {
		errs = append(errs, fmt.Errorf("%d interfaces named, above max-interfaces %d", len(sel.names), c.MaxInterfaces))
	}
	switch c.Kube {
	case "auto", "on", "off":
	default:
		errs = append(errs, fmt.Errorf("kube %q: want auto, on or off", c.Kube))
	}
	if c.RingBytes < 4096 || c.RingBytes&(c.RingBytes-1) != 0 || c.RingBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("ring-bytes %d: want a power of two between 4096 and 1GiB", c.RingBytes))
	}
	if c.RingWakeupBytes < 0 || c.RingWakeupBytes >= c.RingBytes {
		errs = append(errs, fmt.Errorf("ring-wakeup-bytes %d: want 0 or below ring-bytes", c.RingWakeupBytes))
	}
	if c.PollInterval <= 0 || c.PollInterval > time.Second {
		errs = append(errs, fmt.Errorf("poll-interval %v: want (0, 1s]", c.PollInterval))
	}
	if c.ReaderNice < 0 || c.ReaderNice > 19 {
		errs = append(errs, fmt.Errorf("reader-nice %d: want 0 to 19 (lower priority only)", c.ReaderNice))
	}
	positive := map[string]int{"max-conns": c.MaxConns, "max-pipelined": c.MaxPending, "max-services": c.MaxServices, "max-routes": c.MaxRoutesPerService, "slow-min-samples": c.Slow.MinSamples, "slow-window": c.Slow.Window, "slow-min-count": c.Slow.MinCount, "slow-max-routes": c.Slow.MaxRoutes, "spike-baseline-windows": c.Spike.BaselineWindows, "spike-min-requests": c.Spike.MinRequests}
	for _, name := range slices.Sorted(maps.Keys(positive)) {
		if positive[name] <= 0 {
			errs = append(errs, fmt.Errorf("%s %d: must be positive", name, positive[name]))
		}
	}
	if c.RequestTimeout <= 0 || c.Spike.Window <= 0 || c.OTLPInterval <= 0 || c.Probe.Timeout <= 0 || c.LabelIdle <= 0 {
		errs = append(errs, errors.New("request-timeout, spike-window, otlp-interval, probe-timeout and label-idle must be positive"))
	}
	if c.Slow.Multiplier <= 1 || c.Spike.Multiplier <= 1 {
		errs = append(errs, errors.New("slow-multiplier and spike-multiplier must be above 1"))
	}
	if c.TraceSampleRatio < 0 || c.TraceSampleRatio > 1 {
		errs = append(errs, fmt.Errorf("trace-sample-ratio %v: want 0 to 1", c.TraceSampleRatio))
	}
	if c.TraceQueueSize <= 0 {
		errs = append(errs, fmt.Errorf("trace-queue-size %d: must be positive", c.TraceQueueSize))
	}
	if c.Spike.MinRate <= 0 || c.Spike.MinRate > 1 {
		errs = append(errs, fmt.Errorf("spike-min-rate %v: want (0, 1]", c.Spike.MinRate))
	}
	if c.Spike.Alpha <= 0 || c.Spike.Alpha >= 1 {
		errs = append(errs, fmt.Errorf("spike-alpha %v: want (0, 1)", c.Spike.Alpha))
	}
	if c.Slow.Alpha <= 0 || c.Slow.Alpha >= 1 {
		errs = append(errs, fmt.Errorf("slow-alpha %v: want (0, 1)", c.Slow.Alpha))
	}
	if c.Slow.Floor <= 0 || c.Slow.Interval <= 0 || c.Slow.BaselinePeriod <= 0 {
		errs = append(errs, errors.New("slow-floor, slow-interval and slow-baseline-period must be positive"))
	}
	errs = append(errs, c.TLS.validate()...)
	if len(c.GatewayAdmin) > 0 && (c.JoinPollInterval <= 0 || c.Join.MaxAge <= 0 || c.Join.MaxLegs <= 0 || c.Join.MaxResults <= 0) {
		errs = append(errs, errors.New("join-poll-interval, join-max-age, join-max-legs and join-results must be positive"))
	}
	if gatewayNetnsPattern(c.GatewayNetns) {
		if _, err := filepath.Match(c.GatewayNetns, ""); err != nil {
			errs = append(errs, fmt.Errorf("gateway-netns %q: %w", c.GatewayNetns, err))
		}
		if c.GatewayNetnsRescan <= 0 || c.GatewayNetnsMax <= 0 {
			errs = append(errs, errors.New("gateway-netns-rescan and gateway-netns-max must be positive"))
		}
	}
	return errors.Join(errs...)
}

// errXDPOneInterface: XDP sees packets entering an interface only. On one
// interface (a pod's veth, a node's uplink) it sees requests or responses,
// never both, and every exchange would end as a timeout.
func errXDPOneInterface(name string) error {
	return fmt.Errorf("mode xdp on the single interface %q: XDP sees only packets entering an interface, so on one interface it sees each connection's requests or its responses, never both, and every exchange would end as a timeout; use -mode tc (ingress and egress), or xdp on every interface both directions enter (e.g. both legs of a router)", name)
}

// errXDPAuto: auto selects pods' veths only. XDP on them sees what pods
// send, never what the uplink brings in, so every request from outside
// the node would end as a timeout.
var errXDPAuto = errors.New(`mode xdp with -interface auto: auto selects the pods' veths, where XDP sees only what the pods send (their requests out, their responses), never traffic entering through the uplink, so exchanges with anything off the node would end as timeouts; use -mode tc with auto, or xdp on named interfaces that every direction enters`)

// selector parses Interfaces and PodCIDRs.
func (c *Config) selector() (*ifaceSelector, error) {
	var cidrs []netip.Prefix
	var errs []error
	for _, s := range c.PodCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("pod-cidr %q: %w", s, err))
			continue
		}
		cidrs = append(cidrs, p.Masked())
	}
	sel, err := parseSelector(c.Interfaces, cidrs)
	if err != nil {
		errs = append(errs, err)
	}
	if len(cidrs) > 0 && sel != nil && !sel.discovers() {
		errs = append(errs, errors.New(`pod-cidr narrows patterns and "auto" only, and the interface list has neither`))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sel, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// envReader reads typed environment defaults, collecting parse errors.
type envReader struct{ errs []error }

func (e *envReader) str(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func (e *envReader) parse(key string, parse func(string) error) {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return
	}
	if err := parse(v); err != nil {
		e.errs = append(e.errs, fmt.Errorf("environment %s=%q: %w", key, v, err))
	}
}

func (e *envReader) integer(key string, def int) int {
	e.parse(key, func(v string) error {
		x, err := strconv.Atoi(v)
		if err == nil {
			def = x
		}
		return err
	})
	return def
}

func (e *envReader) float(key string, def float64) float64 {
	e.parse(key, func(v string) error {
		x, err := strconv.ParseFloat(v, 64)
		if err == nil {
			def = x
		}
		return err
	})
	return def
}

func (e *envReader) dur(key string, def time.Duration) time.Duration {
	e.parse(key, func(v string) error {
		x, err := time.ParseDuration(v)
		if err == nil {
			def = x
		}
		return err
	})
	return def
}

func (e *envReader) boolean(key string, def bool) bool {
	e.parse(key, func(v string) error {
		x, err := strconv.ParseBool(v)
		if err == nil {
			def = x
		}
		return err
	})
	return def
}

// gatewayNetnsPattern: -gateway-netns is a glob pattern, not one path.
func gatewayNetnsPattern(s string) bool { return strings.ContainsAny(s, "*?[") }
