package export

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/pair"
	"github.com/false-systems/rauta/internal/tracecontext"
)

// span is one observed exchange as a SERVER span, kept as plain fields
// (every string is one the pipeline already holds, bounded or interned) so
// that queueing it copies a struct and allocates nothing; the exporter
// goroutine turns it into OTLP.
type span struct {
	traceID    [16]byte
	id, parent [8]byte
	flags      byte
	start, end int64 // Unix nanoseconds
	traceState string

	method, route, target, host, userAgent, version string
	status                                          int
	outcome                                         pair.Outcome
	client, server                                  netip.AddrPort

	res resourceKey
}

// resourceKey is what a span's resource says: the observed service.
type resourceKey struct{ service, namespace, pod string }

// spanOf makes the span of observation o in trace tid, child of parent
// (zero for a trace the observer starts).
func spanOf(o *detect.Observation, tid [16]byte, parent [8]byte, service string) span {
	return span{
		traceID: tid, id: tracecontext.NewSpanID(), parent: parent, flags: o.Trace.Flags | 1,
		start: o.Time.UnixNano() - int64(o.Latency()), end: o.Time.UnixNano(),
		traceState: o.TraceState,
		method:     o.Method, route: o.Route, target: o.Target, host: o.Host, userAgent: o.UserAgent,
		version: o.Version, status: o.Status, outcome: o.Outcome, client: o.Client, server: o.Server,
		res: resourceKey{service: service, namespace: o.Namespace, pod: o.Pod},
	}
}

// otlp converts s with the HTTP semantic conventions' server span
// attributes, the metrics' values for method, route and error.type.
func (s *span) otlp() *tracepb.Span {
	attrs := make([]*commonpb.KeyValue, 0, 16)
	str := func(k, v string) {
		if v != "" {
			attrs = append(attrs, strAttr(k, v))
		}
	}
	num := func(k string, v int) { attrs = append(attrs, intAttr(k, int64(v))) }

	method := s.method
	if !knownMethod(method) {
		method = "_OTHER"
		str("http.request.method_original", s.method)
	}
	str("http.request.method", method)
	var errorType string
	switch s.outcome {
	case pair.Complete:
		num("http.response.status_code", s.status)
		if s.status >= 500 {
			errorType = statusText(s.status)
		}
	default:
		errorType = s.outcome.String() // reset, timeout: as the metrics
	}
	str("error.type", errorType)
	str("http.route", s.route)
	path, _, _ := strings.Cut(s.target, "?")
	str("url.path", path)
	// server.address is the name the client used (Host), as the
	// conventions ask; the socket is network.local.*.
	if host, port, ok := splitHost(s.host); ok {
		str("server.address", host)
		if port > 0 {
			num("server.port", port)
		} else {
			num("server.port", int(s.server.Port()))
		}
	} else {
		str("server.address", s.server.Addr().String())
		num("server.port", int(s.server.Port()))
	}
	str("client.address", s.client.Addr().String())
	num("client.port", int(s.client.Port()))
	str("network.local.address", s.server.Addr().String())
	num("network.local.port", int(s.server.Port()))
	str("network.protocol.version", s.version)
	str("user_agent.original", s.userAgent)
	attrs = append(attrs, &commonpb.KeyValue{Key: "rauta.observer", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}})

	// Span names: "{method} {route}", "HTTP" for a method outside the
	// standard ones (semantic conventions), never the raw path.
	name := method
	if method == "_OTHER" {
		name = "HTTP"
	}
	if s.route != "" {
		name += " " + s.route
	}
	flags := uint32(s.flags)
	if s.parent != ([8]byte{}) {
		// The parent came over the wire: a remote context.
		flags |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	} else {
		flags |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	}
	sp := &tracepb.Span{
		TraceId:           s.traceID[:],
		SpanId:            s.id[:],
		TraceState:        s.traceState,
		Name:              name,
		Kind:              tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(s.start),
		EndTimeUnixNano:   uint64(s.end),
		Attributes:        attrs,
		Flags:             flags,
	}
	if s.parent != ([8]byte{}) {
		sp.ParentSpanId = s.parent[:]
	}
	// Server spans: 5xx and no response are errors; 4xx is the client's.
	if errorType != "" {
		sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
	}
	return sp
}

// splitHost splits a Host header value into host and port (0 when none).
func splitHost(h string) (string, int, bool) {
	if h == "" {
		return "", 0, false
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		p, perr := strconv.Atoi(port)
		if perr != nil || p <= 0 || p > 65535 {
			return host, 0, host != ""
		}
		return host, p, host != ""
	}
	return strings.Trim(h, "[]"), 0, true
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}
