package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the proxy's collectors. The HTTP ones are the OpenTelemetry
// HTTP semantic conventions (http.server.request.duration and friends) in
// their Prometheus form, the same names and labels the eBPF observer
// exports (docs/telemetry.md); the rauta_upstream_* counters have no
// semantic-convention equivalent and keep RAUTA's prefix.
type metrics struct {
	// server is http_server_request_duration_seconds and
	// http_server_response_body_size_bytes; client the two
	// http_client_* histograms (histvec.go).
	server        *pairVec
	client        *pairVec
	connectErrors *prometheus.CounterVec
	// failover.go
	retries       *prometheus.CounterVec
	retryOverflow *prometheus.CounterVec
	ejections     *prometheus.CounterVec
	// accesslog.go, spans.go
	logDropped   prometheus.Counter
	spanDropped  prometheus.Counter
	spanExported prometheus.Counter
	spanFailed   prometheus.Counter
	// peer is set in mesh mode (Options.Peers): the server series then
	// carry the workload labels and are resolved there (peermetrics.go).
	peer *peerMetrics
}

// durationBuckets are the observer's (internal/observe/export
// DurationBuckets), so the gateway's and the observer's histograms of the
// same request can be compared bucket for bucket; a test holds them equal.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// sizeBuckets are the observer's SizeBuckets, for the same reason.
var sizeBuckets = []float64{0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304}

// serverLabels label the gateway's server-side instruments: the gateway
// (namespace/name), the rule (http.route: its name, never the path), and
// the semantic-convention attributes, each from a bounded set. error_type
// is the status code of a 5xx answer (semantic conventions, and what the
// observer exports), "" otherwise: a function of the status, so it adds
// no series.
var serverLabels = []string{"gateway", "http_route", "http_request_method", "http_response_status_code", "url_scheme", "network_protocol_version", "error_type"}

// clientLabels label the upstream instruments: the backend (namespace/
// service:port) and the attempt's method, status and error type (the
// status code of a 4xx or 5xx answer, as the semantic conventions say for
// clients, or why no answer came).
var clientLabels = []string{"backend", "http_request_method", "http_response_status_code", "error_type"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	return newMetricsWith(reg, serverLabels)
}

// newMetricsWith is newMetrics with the server instruments labelled
// server (serverLabels, and in mesh mode peerLabels after them).
func newMetricsWith(reg prometheus.Registerer, server []string) (*metrics, error) {
	m := &metrics{
		server: newPairVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP server requests, from reading the request head to the end of the response (OpenTelemetry http.server.request.duration).",
			Buckets: durationBuckets,
		}, prometheus.HistogramOpts{
			Name:    "http_server_response_body_size_bytes",
			Help:    "Size of the response bodies sent to clients (OpenTelemetry http.server.response.body.size).",
			Buckets: sizeBuckets,
		}, server),
		client: newPairVec(prometheus.HistogramOpts{
			Name:    "http_client_request_duration_seconds",
			Help:    "Duration of each attempt sent to a backend, to the end of its response body; attempts that failed without a response carry error_type and an empty status (OpenTelemetry http.client.request.duration).",
			Buckets: durationBuckets,
		}, prometheus.HistogramOpts{
			Name:    "http_client_response_body_size_bytes",
			Help:    "Size of the response bodies backends sent (OpenTelemetry http.client.response.body.size).",
			Buckets: sizeBuckets,
		}, clientLabels),
		connectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_connect_errors_total",
			Help: "Backend requests that failed to connect or were reset, by backend.",
		}, []string{"backend"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_retries_total",
			Help: "Requests sent to a second endpoint after the first failed before any response byte, by backend.",
		}, []string{"backend"}),
		retryOverflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_retry_budget_exhausted_total",
			Help: "Retries not made because the backend's retry budget was spent, by backend.",
		}, []string{"backend"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_ejections_total",
			Help: "Endpoints left out of load balancing after a connect failure or reset (passive health), by backend.",
		}, []string{"backend"}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_access_log_dropped_total",
			Help: "Access log lines dropped because the log writer fell behind (its queue was full).",
		}),
		spanDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_trace_spans_dropped_total",
			Help: "Spans dropped because the OTLP export queue was full.",
		}),
		spanExported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_trace_spans_exported_total",
			Help: "Spans the OTLP endpoint accepted.",
		}),
		spanFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_trace_spans_failed_total",
			Help: "Spans lost because their OTLP export failed.",
		}),
	}
	for _, c := range []prometheus.Collector{m.server, m.client,
		m.connectErrors, m.retries, m.retryOverflow, m.ejections, m.logDropped, m.spanDropped, m.spanExported, m.spanFailed} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register metrics: %w (one Server per registry)", err)
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// knownMethods are the method label values; anything else is "_OTHER" (the
// semantic conventions' value), so clients cannot grow the label set.
var knownMethods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "_OTHER",
}

func methodIndex(m string) int {
	for i, k := range knownMethods[:len(knownMethods)-1] {
		if m == k {
			return i
		}
	}
	return len(knownMethods) - 1
}

// maxStatus bounds the status code label: codes are three digits (both
// engines and net/http parse exactly three), so every label value is one
// of at most 1000; the exact code is the label, never a class.
const maxStatus = 1000

// statusLabel is the label of code; codes out of range (none are) fall
// back to the empty value.
func statusLabel(code int) string {
	if code <= 0 || code >= maxStatus {
		return ""
	}
	return strconv.Itoa(code)
}

// protocol versions and schemes, the other server labels.
var (
	protoVersions = [...]string{"1.0", "1.1", "2"}
	schemes       = [...]string{"http", "https"}
)

// protoIndex is the index of the request's protocol version.
func protoIndex(major, minor int) uint8 {
	switch {
	case major >= 2:
		return 2
	case minor == 0:
		return 0
	}
	return 1
}

func schemeIndex(scheme string) int {
	if scheme == "https" {
		return 1
	}
	return 0
}

// seriesCache finds the series an owner (a route, a backend) has used by
// a small key, without a lock: an immutable list, replaced whole when a
// series is added. An owner sees few label sets (a method or two, a few
// status codes), so the list is short and a scan is quicker than a map;
// past maxCached entries a series is looked up in its vector each time
// (a lock and a map), which only a backend answering with hundreds of
// distinct status codes would reach.
type seriesCache struct {
	list atomic.Pointer[[]cachedSeries]
	mu   sync.Mutex // serialises adds
}

type cachedSeries struct {
	key uint32
	s   *pairSeries
}

// maxCached bounds a seriesCache's list.
const maxCached = 64

// find returns the series cached under key, or nil.
func (c *seriesCache) find(key uint32) *pairSeries {
	if l := c.list.Load(); l != nil {
		for _, e := range *l {
			if e.key == key {
				return e.s
			}
		}
	}
	return nil
}

// add caches s under key, unless the list is full.
func (c *seriesCache) add(key uint32, s *pairSeries) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old []cachedSeries
	if l := c.list.Load(); l != nil {
		old = *l
	}
	if len(old) >= maxCached {
		return
	}
	for _, e := range old {
		if e.key == key {
			return
		}
	}
	l := append(make([]cachedSeries, 0, len(old)+1), old...)
	l = append(l, cachedSeries{key, s})
	c.list.Store(&l)
}

// routeMetrics resolves the label sets of one (gateway, route) pair lazily:
// the first request with a method, scheme, version and status pays the
// label lookup, later ones scan the route's short cache. It outlives
// reloads, so a route that stays keeps its resolved series.
type routeMetrics struct {
	m       *metrics
	gateway string
	route   string
	// cache holds the series by method, scheme and version
	// (tableIndex) and status: tableIndex<<10 | status.
	cache seriesCache
}

// tableIndex numbers a request's method, scheme and protocol version.
func tableIndex(mi, si int, proto uint8) int {
	return (mi*len(schemes)+si)*len(protoVersions) + int(proto)
}

// observe records one request: its method, the listener's scheme, the
// protocol version index, the status it was answered with, its duration
// and the response body bytes.
func (rm *routeMetrics) observe(method, scheme string, proto uint8, code int, seconds float64, bytes int64) {
	mi, si := methodIndex(method), schemeIndex(scheme)
	if code <= 0 || code >= maxStatus {
		code = 0
	}
	key := uint32(tableIndex(mi, si, proto))<<10 | uint32(code)
	s := rm.cache.find(key)
	if s == nil {
		s = rm.m.server.get(rm.labelValues(mi, si, proto, code, 0))
		rm.cache.add(key, s)
	}
	rm.m.server.observe(s, 0, seconds)
	rm.m.server.observe(s, 1, float64(bytes))
}

// labelValues are the values of serverLabels for a request of rm with
// method index mi, scheme index si, version proto and status code, in a
// slice with room for extra more (a mesh's peerLabels).
func (rm *routeMetrics) labelValues(mi, si int, proto uint8, code, extra int) []string {
	errType := ""
	if code >= 500 {
		errType = statusLabel(code)
	}
	return append(make([]string, 0, len(serverLabels)+extra),
		rm.gateway, rm.route, knownMethods[mi], statusLabel(code), schemes[si], protoVersions[proto], errType)
}

// forgetRoutes deletes every series of the routes gone says are, once
// they are gone from the config: one pass over the series for all of
// them.
func (m *metrics) forgetRoutes(gone map[routeKey]*routeMetrics) {
	if len(gone) == 0 {
		return
	}
	m.server.deleteMatching(func(l []string) bool { return gone[routeKey{l[0], l[1]}] != nil })
	if m.peer != nil {
		m.peer.forget(func(k peerKey) bool { return gone[routeKey{k.rm.gateway, k.rm.route}] == k.rm }, nil)
	}
}

type routeKey struct{ gateway, route string }

// upstreamError is the error_type label of an attempt that got no
// response: a bounded set, as the semantic conventions ask.
type upstreamError uint8

const (
	upNone    upstreamError = iota // a response came
	upConnect                      // refused, reset, closed before a response
	upTimeout                      // a timeout passed first
	upClient                       // the client went away first
	upOther                        // a malformed response, anything else
	upErrorTypes
)

var upstreamErrorNames = [upErrorTypes]string{"", "connect", "timeout", "client_closed", "_OTHER"}

func (e upstreamError) String() string { return upstreamErrorNames[e] }

// backendMetrics resolves the upstream label sets of one backend lazily,
// like routeMetrics. It outlives reloads while the backend stays.
type backendMetrics struct {
	m       *metrics
	backend string
	// cache holds the series by method, status and error type.
	cache seriesCache
}

// observe records one attempt: code is the backend's status, 0 when none
// came (err says why).
func (bm *backendMetrics) observe(method string, code int, err upstreamError, seconds float64, bytes int64) {
	if bm == nil {
		return
	}
	mi := methodIndex(method)
	if code <= 0 || code >= maxStatus || err != upNone {
		if err == upNone {
			err = upOther
		}
		code = 0
	}
	key := uint32(mi)<<13 | uint32(code)<<3 | uint32(err)
	s := bm.cache.find(key)
	if s == nil {
		errType := err.String()
		if code >= 400 {
			errType = statusLabel(code)
		}
		s = bm.m.client.get([]string{bm.backend, knownMethods[mi], statusLabel(code), errType})
		bm.cache.add(key, s)
	}
	bm.m.client.observe(s, 0, seconds)
	if code != 0 {
		bm.m.client.observe(s, 1, float64(bytes))
	}
}

// forgetBackends deletes the upstream series of the backends gone says
// are, once they are gone from the config (the rauta_upstream_* counters
// included).
func (m *metrics) forgetBackends(gone map[string]bool) {
	if len(gone) == 0 {
		return
	}
	m.client.deleteMatching(func(l []string) bool { return gone[l[0]] })
	for b := range gone {
		labels := prometheus.Labels{"backend": b}
		m.connectErrors.DeletePartialMatch(labels)
		m.retries.DeletePartialMatch(labels)
		m.retryOverflow.DeletePartialMatch(labels)
		m.ejections.DeletePartialMatch(labels)
	}
}
