package proxy

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/false-systems/rauta/internal/tracecontext"
)

// TracingOptions turn on OTLP traces (docs/telemetry.md, "Traces").
type TracingOptions struct {
	// Endpoint is the OTLP/HTTP traces URL spans are POSTed to, e.g.
	// http://collector:4318/v1/traces; "" turns tracing off, and then the
	// request path does no tracing work at all.
	Endpoint string
	// SampleRatio is the share of requests without a sampled parent that
	// are traced (0 to 1). A client's traceparent is followed either way.
	SampleRatio float64
	// ServiceName is the service.name resource attribute; "" means "rauta".
	ServiceName string
	// QueueSize bounds the spans waiting for export; past it spans are
	// dropped and counted (rauta_trace_spans_dropped_total), never waited
	// for. 0 means 2048.
	QueueSize int
	// BatchSize is the most spans per export request; 0 means 512.
	BatchSize int
	// FlushInterval is the longest a span waits for its batch; 0 means 1s.
	FlushInterval time.Duration
}

// spanKind is a span's kind, OTLP's numbering.
type spanKind uint8

const (
	spanServer spanKind = spanKind(tracepb.Span_SPAN_KIND_SERVER)
	spanClient spanKind = spanKind(tracepb.Span_SPAN_KIND_CLIENT)
)

// span is one finished span, held as plain fields until the exporter turns
// it into OTLP off the request path.
type span struct {
	traceID    [16]byte
	id, parent [8]byte
	kind       spanKind
	start, end time.Time
	// Attributes (semantic conventions); empty ones are left out.
	method, route, scheme, proto string
	host, target, userAgent      string
	client, requestID, gateway   string
	backend, peer, errorType     string
	status                       int
}

// tracer samples requests and exports their spans: a bounded queue that
// requests never wait on, and one goroutine that batches and POSTs.
type tracer struct {
	sampler
	opts    TracingOptions
	queue   chan *span
	client  *http.Client
	metrics *metrics
	logger  *slog.Logger
	res     *resourcepb.Resource

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func newTracer(o TracingOptions, m *metrics, logger *slog.Logger) *tracer {
	if o.QueueSize <= 0 {
		o.QueueSize = 2048
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 512
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.ServiceName == "" {
		o.ServiceName = "rauta"
	}
	t := &tracer{
		sampler: newSampler(o.SampleRatio),
		opts:    o,
		queue:   make(chan *span, o.QueueSize),
		client:  &http.Client{Timeout: 10 * time.Second},
		metrics: m,
		logger:  logger,
		res:     newTracerResource(o.ServiceName),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go t.run()
	return t
}

// emit queues a finished span, or drops and counts it when the queue is
// full: the request path never waits for the exporter.
func (t *tracer) emit(s *span) {
	select {
	case t.queue <- s:
	default:
		t.metrics.spanDropped.Inc()
	}
}

// close exports what is queued, waiting at most timeout, and stops.
func (t *tracer) close(timeout time.Duration) {
	t.stopOnce.Do(func() { close(t.stop) })
	select {
	case <-t.done:
	case <-time.After(timeout):
	}
}

func (t *tracer) run() {
	defer close(t.done)
	batch := make([]*span, 0, t.opts.BatchSize)
	tick := time.NewTicker(t.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case s := <-t.queue:
			batch = append(batch, s)
			if len(batch) < t.opts.BatchSize {
				continue
			}
		case <-tick.C:
		case <-t.stop:
			for {
				select {
				case s := <-t.queue:
					batch = append(batch, s)
					if len(batch) == t.opts.BatchSize {
						t.export(batch)
						batch = batch[:0]
					}
					continue
				default:
				}
				break
			}
			t.export(batch)
			return
		}
		t.export(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// export POSTs one batch as an OTLP/HTTP protobuf request. A failed batch
// is counted and dropped: retrying would only grow the backlog.
func (t *tracer) export(batch []*span) {
	if len(batch) == 0 {
		return
	}
	body, err := exportRequest(t.resourceSpans(batch))
	if err != nil {
		t.metrics.spanFailed.Add(float64(len(batch)))
		return
	}
	if err := t.post(body); err != nil {
		t.metrics.spanFailed.Add(float64(len(batch)))
		t.logger.Debug("OTLP trace export failed", "endpoint", t.opts.Endpoint, "spans", len(batch), "err", err)
		return
	}
	t.metrics.spanExported.Add(float64(len(batch)))
}

func (t *tracer) post(body []byte) error {
	return tracecontext.PostOTLP(t.client, t.opts.Endpoint, t.client.Timeout, body)
}

// newTracerResource is the OTLP resource every batch is exported with.
func newTracerResource(service string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
		strAttr("service.name", service),
		strAttr("telemetry.sdk.name", "rauta"),
		strAttr("telemetry.sdk.language", "go"),
	}}
}

// resourceSpans builds the OTLP resource spans of a batch.
func (t *tracer) resourceSpans(batch []*span) *tracepb.ResourceSpans {
	spans := make([]*tracepb.Span, 0, len(batch))
	for _, s := range batch {
		spans = append(spans, s.otlp())
	}
	return &tracepb.ResourceSpans{
		Resource: t.res,
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "github.com/false-systems/rauta/internal/proxy"},
			Spans: spans,
		}},
	}
}

// exportRequest encodes an OTLP ExportTraceServiceRequest holding rs. The
// message is `repeated ResourceSpans resource_spans = 1` and nothing else,
// so it is written here: the generated type's package
// (otlp/collector/trace/v1) holds the collector's gRPC service too, and
// importing it linked gRPC and grpc-gateway into every binary with a
// proxy (0.5 MB of text the data plane's pages carried).
func exportRequest(rs *tracepb.ResourceSpans) ([]byte, error) {
	inner, err := proto.Marshal(rs)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, protowire.SizeTag(1)+protowire.SizeBytes(len(inner)))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // resource_spans
	return protowire.AppendBytes(b, inner), nil
}

// otlp converts s, with the HTTP semantic-convention attributes; span
// names follow them too: "{method} {route}" on the server, "{method}" on
// the client.
func (s *span) otlp() *tracepb.Span {
	var attrs []*commonpb.KeyValue
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, strAttr(k, v))
		}
	}
	add("http.request.method", s.method)
	if s.status > 0 {
		attrs = append(attrs, &commonpb.KeyValue{Key: "http.response.status_code",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(s.status)}}})
	}
	// error.type: why no response came, else the status code of an
	// error response (5xx on the server, 4xx too on the client).
	errorType := s.errorType
	if errorType == "" && (s.status >= 500 || (s.kind == spanClient && s.status >= 400)) {
		errorType = strconv.Itoa(s.status)
	}
	add("error.type", errorType)
	name := s.method
	if s.kind == spanServer {
		add("http.route", s.route)
		add("url.scheme", s.scheme)
		add("url.path", pathOf(s.target))
		add("server.address", s.host)
		add("network.protocol.version", s.proto)
		add("user_agent.original", s.userAgent)
		add("client.address", s.client)
		add("rauta.gateway", s.gateway)
		if s.route != "" {
			name += " " + s.route
		}
	} else {
		add("rauta.backend", s.backend)
		if host, port, ok := splitPeer(s.peer); ok {
			add("server.address", host)
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, &commonpb.KeyValue{Key: "server.port",
					Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(p)}}})
			}
		}
	}
	add("http.request.header.x-request-id", s.requestID)
	sp := &tracepb.Span{
		TraceId:           s.traceID[:],
		SpanId:            s.id[:],
		Name:              name,
		Kind:              tracepb.Span_SpanKind(s.kind),
		StartTimeUnixNano: uint64(s.start.UnixNano()),
		EndTimeUnixNano:   uint64(s.end.UnixNano()),
		Attributes:        attrs,
		Flags:             1, // sampled
	}
	if s.parent != ([8]byte{}) {
		sp.ParentSpanId = s.parent[:]
	}
	// Server spans: 5xx is an error (4xx is the client's). Client spans:
	// 4xx and 5xx, and no response at all (semantic conventions).
	if errorType != "" {
		sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
	}
	return sp
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func pathOf(target string) string {
	p, _, _ := strings.Cut(target, "?")
	return p
}

func splitPeer(addr string) (host, port string, ok bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", false
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:], true
}
