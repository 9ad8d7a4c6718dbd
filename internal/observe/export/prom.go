package export

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/h2parse"
)

var exchangeLabels = []string{"http_request_method", "http_response_status_code", "http_route", "service_name", "k8s_namespace_name", "error_type", "url_scheme", "network_protocol_version", "rpc_grpc_status_code"}

// Prom holds the Prometheus metrics on a private registry.
type Prom struct {
	reg        *prometheus.Registry
	duration   *prometheus.HistogramVec
	reqBody    *prometheus.HistogramVec
	respBody   *prometheus.HistogramVec
	detections *prometheus.CounterVec
	// series caches resolved label sets: resolving through the vectors
	// hashes and validates six strings per call, most of the cost of
	// Record. Bounded because every label is (see labelsOf).
	series map[labels]*series
}

// series holds the resolved observers of one label set; the body-size
// ones are resolved on first use so that exchanges without Content-Length
// do not create empty series.
type series struct {
	vals                        []string
	duration, reqBody, respBody prometheus.Observer
}

// maxCachedSeries caps the cache should the label bounds be configured
// very high; past it the cache is dropped and rebuilt.
const maxCachedSeries = 1 << 16

// NewProm builds the metrics; counters is called at scrape time for the
// observer's own counters.
func NewProm(counters func() Counters) *Prom {
	p := &Prom{
		reg: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP server requests observed by eBPF, from the first request segment to the status line (HTTP/2: request HEADERS to response HEADERS).",
			Buckets: DurationBuckets,
		}, exchangeLabels),
		reqBody: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_body_size_bytes",
			Help:    "Size of HTTP server request bodies (Content-Length, when present).",
			Buckets: SizeBuckets,
		}, exchangeLabels),
		respBody: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_response_body_size_bytes",
			Help:    "Size of HTTP server response bodies (Content-Length, when present).",
			Buckets: SizeBuckets,
		}, exchangeLabels),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_observer_detections_total",
			Help: "Events emitted by the processors (slow_response, error_spike, probe_failure).",
		}, []string{"kind", "service_name"}),
		series: make(map[labels]*series),
	}
	p.reg.MustRegister(p.duration, p.reqBody, p.respBody, p.detections, &counterCollector{read: counters})
	return p
}

// Record adds an observation. Only the pipeline goroutine calls it.
func (p *Prom) Record(o *detect.Observation) {
	l := labelsOf(o)
	s := p.series[l]
	if s == nil {
		if len(p.series) >= maxCachedSeries {
			clear(p.series)
		}
		vals := []string{l.method, l.status, l.route, l.service, l.namespace, l.errorType, l.scheme, l.version, l.grpcStatus}
		s = &series{vals: vals, duration: p.duration.WithLabelValues(vals...)}
		p.series[l] = s
	}
	s.duration.Observe(o.Latency().Seconds())
	if o.ReqContentLength >= 0 {
		if s.reqBody == nil {
			s.reqBody = p.reqBody.WithLabelValues(s.vals...)
		}
		s.reqBody.Observe(float64(o.ReqContentLength))
	}
	if o.RespContentLength >= 0 {
		if s.respBody == nil {
			s.respBody = p.respBody.WithLabelValues(s.vals...)
		}
		s.respBody.Observe(float64(o.RespContentLength))
	}
}

// Forget drops the series of a service's route, or of the whole service
// when route is empty: the label limiter evicted it, and its series must
// not stay exported for ever. Only the pipeline goroutine calls it.
func (p *Prom) Forget(service, route string) {
	match := prometheus.Labels{"service_name": service}
	if route != "" {
		match["http_route"] = route
	} else {
		p.detections.DeletePartialMatch(match)
	}
	p.duration.DeletePartialMatch(match)
	p.reqBody.DeletePartialMatch(match)
	p.respBody.DeletePartialMatch(match)
	// Evictions are rare (a value must be idle for the idle age): the
	// resolved-series cache is rebuilt rather than searched.
	clear(p.series)
}

// Detection counts a processor event.
func (p *Prom) Detection(e *detect.Event) {
	p.detections.WithLabelValues(e.Kind, e.Service).Inc()
}

// Handler serves the registry.
func (p *Prom) Handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{Registry: p.reg})
}

// Registry exposes the registry (for tests and embedding).
func (p *Prom) Registry() *prometheus.Registry { return p.reg }

type counterDesc struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	get  func(*Counters) float64
}

func newDesc(name, help string, constLabels prometheus.Labels) *prometheus.Desc {
	return prometheus.NewDesc(name, help, nil, constLabels)
}

var counterDescs = []counterDesc{
	{newDesc("rauta_observer_kernel_events_total", "Events the kernel programs wrote to the ring buffer.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Kernel.Events) }},
	{newDesc("rauta_observer_ringbuf_dropped_total", "Events the kernel could not deliver because the ring buffer was full.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Kernel.RingbufFull) }},
	{newDesc("rauta_observer_non_http_segments_total", "TCP segments with payload that did not start like HTTP/1.x and are not of an h2c connection seen from its preface (TLS, bodies, other protocols).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Kernel.NonHTTP) }},
	{newDesc("rauta_observer_truncated_captures_total", "Events whose segment was longer than the capture window (4096 bytes): messages starting beyond it are not seen.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Kernel.Truncated) }},
	{newDesc("rauta_observer_parse_failures_total", "HTTP heads that could not be parsed.", prometheus.Labels{"message": "request", "reason": "malformed"}), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.RequestMalformed) }},
	{newDesc("rauta_observer_parse_failures_total", "HTTP heads that could not be parsed.", prometheus.Labels{"message": "request", "reason": "truncated"}), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.RequestTruncated) }},
	{newDesc("rauta_observer_parse_failures_total", "HTTP heads that could not be parsed.", prometheus.Labels{"message": "response", "reason": "malformed"}), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.ResponseMalformed) }},
	{newDesc("rauta_observer_parse_failures_total", "HTTP heads that could not be parsed.", prometheus.Labels{"message": "response", "reason": "truncated"}), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.ResponseTruncated) }},
	{newDesc("rauta_observer_truncated_targets_total", "Exchanges whose request-target was cut (end of the capture window, or 256 bytes); the exchange carries target_truncated.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.TargetsTruncated) }},
	{newDesc("rauta_observer_unpaired_requests_total", "Requests dropped without an exchange: a later response answered a later request (theirs was not captured), or they could have been answered by an ambiguous response.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.Unpaired) }},
	{newDesc("rauta_observer_ambiguous_responses_total", "Responses that TCP sequence and acknowledgment numbers could not tie to one request with certainty; dropped, never reported with a guessed request.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.Ambiguous) }},
	{newDesc("rauta_observer_decode_errors_total", "Ring buffer records that did not decode.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.DecodeErrors) }},
	{newDesc("rauta_observer_exchanges_total", "Request/response exchanges emitted (any outcome; HTTP/1.x and HTTP/2 streams).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.Exchanges + c.H2.Exchanges) }},
	{newDesc("rauta_observer_unmatched_responses_total", "Responses seen with no pending request on their connection.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.UnmatchedResponses) }},
	{newDesc("rauta_observer_duplicate_segments_total", "Segments seen more than once (several hooks, retransmissions).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.Duplicates) }},
	{newDesc("rauta_observer_connection_evictions_total", "Connections evicted from the pairing LRU.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.Evictions) }},
	{newDesc("rauta_observer_evicted_requests_total", "Pending requests lost with evicted connections.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.EvictedPending) }},
	{newDesc("rauta_observer_pipeline_overflows_total", "Connections cleared for exceeding the pipelined request limit.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.PipelineOverflow) }},
	{newDesc("rauta_observer_label_overflows_total", "Routes or services replaced by _OTHER to bound label cardinality.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.LabelOverflows) }},
	{newDesc("rauta_observer_label_evictions_total", "Idle routes or services removed from the label budget to make room for new ones (their series are deleted).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.LabelEvictions) }},
	{newDesc("rauta_observer_body_segments_total", "Request-like segments taken as body bytes (inside the previous request's body by TCP sequence, or unparsable while a request was pending).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.BodySegments) }},
	{newDesc("rauta_observer_unanswered_malformed_total", "Unparsable requests (text protocols such as memcached's GET key) that ended without an HTTP response; not exchanges.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.UnansweredMalformed) }},
	{newDesc("rauta_observer_json_dropped_total", "JSON lines (events, exchanges) dropped because stdout did not keep up and the output queue was full.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.JSONDropped) }},
	{newDesc("rauta_observer_idle_connections_closed_total", "Connections forgotten after 60 s with nothing pending and no HTTP message (the kernel does not report FINs).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.IdleClosed) }},
	{newDesc("rauta_observer_reattachments_total", "Attachments to interfaces named in the interface list that were deleted and created again (new ifindex).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Interfaces.Reattached) }},
	{newDesc("rauta_observer_attached_interfaces", "Interfaces the observer's programs are attached to now.", nil), prometheus.GaugeValue, func(c *Counters) float64 { return float64(c.Interfaces.Attached) }},
	{newDesc("rauta_observer_interface_attachments_total", "Attachments made to interfaces: at start, to discovered interfaces, to recreated ones.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Interfaces.Attaches) }},
	{newDesc("rauta_observer_interface_detachments_total", "Attachments removed because their interface was deleted or is no longer selected.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Interfaces.Detaches) }},
	{newDesc("rauta_observer_interface_attach_errors_total", "Attachments that failed; each is retried at the next link change or resync (10 s).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Interfaces.AttachErrors) }},
	{newDesc("rauta_observer_interface_refusals_total", "Selected interfaces left unobserved because max-interfaces were attached (counted once per interface).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Interfaces.Refused) }},
	{newDesc("rauta_observer_released_connections_total", "Tracked connections forgotten because an interface they were captured on was deleted (a pod went away).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Pair.Released) }},
	{newDesc("rauta_observer_spans_exported_total", "Spans of observed exchanges the OTLP endpoint accepted.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Spans.Exported) }},
	{newDesc("rauta_observer_spans_failed_total", "Spans of observed exchanges lost to a failed OTLP export (not retried).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Spans.Failed) }},
	{newDesc("rauta_observer_spans_dropped_total", "Spans of observed exchanges dropped because the export queue was full (trace-queue-size).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.Spans.Dropped) }},
	{newDesc("rauta_observer_tls_events_total", "Plaintext reads and writes starting like HTTP/1.x that the TLS library probes delivered (-tls-uprobes).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.TLS.Events) }},
	{newDesc("rauta_observer_tls_ringbuf_dropped_total", "TLS plaintext records lost because the TLS ring buffer was full (tls-ring-bytes).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.TLS.RingFull) }},
	{newDesc("rauta_observer_tls_truncated_captures_total", "TLS plaintext records whose call carried more than the capture window (4096 bytes for requests, 512 for responses).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.TLS.Truncated) }},
	{newDesc("rauta_observer_tls_decode_errors_total", "TLS ring buffer records that did not decode.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.TLS.Malformed) }},
	{newDesc("rauta_observer_tls_cgroup_unread_total", "TLS plaintext records whose process's cgroup could not be read (the process had exited): their exchanges name no process pod.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.TLS.CgroupUnread) }},
	{newDesc("rauta_observer_tls_libraries", "TLS library files (libssl) probed now (tls-max-libs).", nil), prometheus.GaugeValue, func(c *Counters) float64 { return float64(c.TLS.Libraries) }},
	{newDesc("rauta_observer_tracked_connections", "Connections tracked for pairing now (a connection is forgotten on a reset, or 60 s after its last message with nothing pending).", nil), prometheus.GaugeValue, func(c *Counters) float64 { return float64(c.Pair.Open) }},
}

// h2Descs are the h2c tracker's counters (docs/observer.md, "HTTP/2 and gRPC").
var h2Descs = func() []counterDesc {
	d := []counterDesc{
		{newDesc("rauta_observer_h2_connections_total", "h2c connections seen from their client preface.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.Conns) }},
		{newDesc("rauta_observer_h2_tracked_connections", "h2c connections tracked now.", nil), prometheus.GaugeValue, func(c *Counters) float64 { return float64(c.H2.Tracked) }},
		{newDesc("rauta_observer_h2_dropped_streams_total", "HTTP/2 streams dropped without an exchange: their connection was desynchronised, evicted, idle or closed, or the response had no :status.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.Dropped) }},
		{newDesc("rauta_observer_h2_refused_streams_total", "HTTP/2 streams above a GOAWAY's last stream id (not processed by the server; the client may retry them).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.Refused) }},
		{newDesc("rauta_observer_h2_stream_overflows_total", "HTTP/2 requests not tracked because their connection had 256 streams pending.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.StreamOverflows) }},
		{newDesc("rauta_observer_h2_unmatched_responses_total", "HTTP/2 response header blocks on streams not tracked.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.UnmatchedResponses) }},
		{newDesc("rauta_observer_h2_unknown_segments_total", "Segments of h2c connections the tracker does not know (evicted, or preface not seen).", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.UnknownSegments) }},
		{newDesc("rauta_observer_h2_late_server_starts_total", "h2c connections whose server direction was taken from its first segment seen, a control frame, because its SETTINGS went by before the client preface.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.LateServerStarts) }},
		{newDesc("rauta_observer_h2_connection_evictions_total", "h2c connections evicted because 4096 were tracked.", nil), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.Evictions) }},
	}
	for i, reason := range h2parse.DesyncReasonNames {
		d = append(d, counterDesc{newDesc("rauta_observer_h2_desyncs_total", "h2c connections whose HPACK state became unknowable (bytes missing, cut, invalid or over a bound); nothing more is reported for them.", prometheus.Labels{"reason": reason}), prometheus.CounterValue, func(c *Counters) float64 { return float64(c.H2.Desyncs[i]) }})
	}
	return d
}()

type counterCollector struct{ read func() Counters }

func (c *counterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range counterDescs {
		ch <- d.desc
	}
	for _, d := range h2Descs {
		ch <- d.desc
	}
}

func (c *counterCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.read()
	for _, d := range counterDescs {
		ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.get(&snap))
	}
	for _, d := range h2Descs {
		ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.get(&snap))
	}
}
