package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the proxy's collectors. The HTTP ones are the OpenTelemetry
// HTTP semantic conventions (http.server.request.duration and friends) in
// their Prometheus form, the same names and labels the eBPF observer
// exports (docs/telemetry.md); the rauta_upstream_* counters have no
// semantic-convention equivalent and keep RAUTA's prefix.
type metrics struct {
	serverDuration *prometheus.HistogramVec
	serverBody     *prometheus.HistogramVec
	clientDuration *prometheus.HistogramVec
	clientBody     *prometheus.HistogramVec
	connectErrors  *prometheus.CounterVec
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
		serverDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP server requests, from reading the request head to the end of the response (OpenTelemetry http.server.request.duration).",
			Buckets: durationBuckets,
		}, server),
		serverBody: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_response_body_size_bytes",
			Help:    "Size of the response bodies sent to clients (OpenTelemetry http.server.response.body.size).",
			Buckets: sizeBuckets,
		}, server),
		clientDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_client_request_duration_seconds",
			Help:    "Duration of each attempt sent to a backend, to the end of its response body; attempts that failed without a response carry error_type and an empty status (OpenTelemetry http.client.request.duration).",
			Buckets: durationBuckets,
		}, clientLabels),
		clientBody: prometheus.NewHistogramVec(prometheus.HistogramOpts{
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
	for _, c := range []prometheus.Collector{m.serverDuration, m.serverBody, m.clientDuration, m.clientBody,
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

// codeTable holds resolved series by status code in two levels, the
// hundreds and then the rest, each block allocated on first use: a route
// that answers only 200 and 404 holds two 100-slot blocks (1.6 KiB), not
// 1000 slots for every method it sees.
type codeTable [maxStatus / 100]atomic.Pointer[codeBlock]

type codeBlock [100]atomic.Pointer[series]

// slot returns where the series of code is kept.
func (t *codeTable) slot(code int) *atomic.Pointer[series] {
	return &loadOrNew(&t[code/100])[code%100]
}

// loadOrNew loads p, storing a new T first if it is nil; concurrent
// callers all get the one that was stored.
func loadOrNew[T any](p *atomic.Pointer[T]) *T {
	v := p.Load()
	if v == nil {
		v = new(T)
		if !p.CompareAndSwap(nil, v) {
			v = p.Load()
		}
	}
	return v
}

// routeMetrics resolves the label sets of one (gateway, route) pair lazily:
// the first request with a method, scheme, version and status pays the
// label lookup, later ones load three pointers. It outlives reloads, so a
// route that stays keeps its resolved series.
type routeMetrics struct {
	m       *metrics
	gateway string
	route   string
	// tables is allocated on the route's first request: a configuration
	// of 10,000 routes, most of them quiet, would otherwise hold a table
	// of 60 pointers for each (14 MB measured).
	tables atomic.Pointer[routeTables]
}

// routeTables holds a route's code tables by method, scheme and protocol
// version.
type routeTables [len(knownMethods) * len(schemes) * len(protoVersions)]atomic.Pointer[codeTable]

type series struct {
	duration prometheus.Observer
	body     prometheus.Observer
}

// observe records one request: its method, the listener's scheme, the
// protocol version index, the status it was answered with, its duration
// and the response body bytes.
func (rm *routeMetrics) observe(method, scheme string, proto uint8, code int, seconds float64, bytes int64) {
	mi, si := methodIndex(method), schemeIndex(scheme)
	if code <= 0 || code >= maxStatus {
		code = 0
	}
	p := loadOrNew(&loadOrNew(&rm.tables)[(mi*len(schemes)+si)*len(protoVersions)+int(proto)]).slot(code)
	s := p.Load()
	if s == nil {
		errType := ""
		if code >= 500 {
			errType = statusLabel(code)
		}
		labels := []string{rm.gateway, rm.route, knownMethods[mi], statusLabel(code), schemes[si], protoVersions[proto], errType}
		s = &series{
			duration: rm.m.serverDuration.WithLabelValues(labels...),
			body:     rm.m.serverBody.WithLabelValues(labels...),
		}
		p.Store(s)
	}
	s.duration.Observe(seconds)
	s.body.Observe(float64(bytes))
}

// forget deletes every series of the route, once it is gone from the config.
func (rm *routeMetrics) forget() {
	labels := prometheus.Labels{"gateway": rm.gateway, "http_route": rm.route}
	rm.m.serverDuration.DeletePartialMatch(labels)
	rm.m.serverBody.DeletePartialMatch(labels)
	if rm.m.peer != nil {
		rm.m.peer.forgetRoute(rm)
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
	// slots is allocated on the backend's first attempt (as
	// routeMetrics.tables).
	slots atomic.Pointer[backendSlots]
}

// backendSlots holds a backend's series: by method and status code, and by
// method and error type for attempts that got no response.
type backendSlots struct {
	tables [len(knownMethods)]atomic.Pointer[codeTable]
	errs   [len(knownMethods)][upErrorTypes]atomic.Pointer[series]
}

// observe records one attempt: code is the backend's status, 0 when none
// came (err says why).
func (bm *backendMetrics) observe(method string, code int, err upstreamError, seconds float64, bytes int64) {
	if bm == nil {
		return
	}
	mi := methodIndex(method)
	slots := loadOrNew(&bm.slots)
	var p *atomic.Pointer[series]
	if code > 0 && code < maxStatus && err == upNone {
		p = loadOrNew(&slots.tables[mi]).slot(code)
	} else {
		if err == upNone {
			err = upOther
		}
		p = &slots.errs[mi][err]
		code = 0
	}
	s := p.Load()
	if s == nil {
		errType := err.String()
		if code >= 400 {
			errType = statusLabel(code)
		}
		labels := []string{bm.backend, knownMethods[mi], statusLabel(code), errType}
		s = &series{
			duration: bm.m.clientDuration.WithLabelValues(labels...),
			body:     bm.m.clientBody.WithLabelValues(labels...),
		}
		p.Store(s)
	}
	s.duration.Observe(seconds)
	if code != 0 {
		s.body.Observe(float64(bytes))
	}
}

// forget deletes the backend's upstream series once it is gone from the
// config (the rauta_upstream_* counters included).
func (bm *backendMetrics) forget() {
	labels := prometheus.Labels{"backend": bm.backend}
	bm.m.clientDuration.DeletePartialMatch(labels)
	bm.m.clientBody.DeletePartialMatch(labels)
	bm.m.connectErrors.DeletePartialMatch(labels)
	bm.m.retries.DeletePartialMatch(labels)
	bm.m.retryOverflow.DeletePartialMatch(labels)
	bm.m.ejections.DeletePartialMatch(labels)
}
