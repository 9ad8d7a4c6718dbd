package export

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"

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
	errorType                                       string // errorTypeOf, as the metrics
	grpc                                            bool   // a complete gRPC exchange with grpcStatus
	grpcStatus                                      uint8
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
		errorType: errorTypeOf(o), grpc: o.GRPC && o.Outcome == pair.Complete, grpcStatus: o.GRPCStatus,
		res: resourceKey{service: service, namespace: o.Namespace, pod: o.Pod},
	}
}

// appendOTLP appends s as an OTLP Span message (opentelemetry/proto/trace/
// v1, field numbers below) with the HTTP semantic conventions' server span
// attributes, the metrics' values for method, route and error.type. The
// exporter writes the wire format itself: building the generated structs
// cost ~9 us and 44 allocations per span on the export goroutine.
func (s *span) appendOTLP(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType) // trace_id
	b = protowire.AppendBytes(b, s.traceID[:])
	b = protowire.AppendTag(b, 2, protowire.BytesType) // span_id
	b = protowire.AppendBytes(b, s.id[:])
	if s.traceState != "" {
		b = protowire.AppendTag(b, 3, protowire.BytesType) // trace_state
		b = protowire.AppendString(b, s.traceState)
	}
	if s.parent != ([8]byte{}) {
		b = protowire.AppendTag(b, 4, protowire.BytesType) // parent_span_id
		b = protowire.AppendBytes(b, s.parent[:])
	}
	method := s.method
	if !knownMethod(method) {
		method = "_OTHER"
	}
	// Span names: "{method} {route}", "HTTP" for a method outside the
	// standard ones (semantic conventions), never the raw path.
	name := method
	if method == "_OTHER" {
		name = "HTTP"
	}
	b = protowire.AppendTag(b, 5, protowire.BytesType) // name
	if s.route != "" {
		b = protowire.AppendVarint(b, uint64(len(name)+1+len(s.route)))
		b = append(append(append(b, name...), ' '), s.route...)
	} else {
		b = protowire.AppendString(b, name)
	}
	b = protowire.AppendTag(b, 6, protowire.VarintType) // kind
	b = protowire.AppendVarint(b, uint64(tracepb.Span_SPAN_KIND_SERVER))
	b = protowire.AppendTag(b, 7, protowire.Fixed64Type) // start_time_unix_nano
	b = protowire.AppendFixed64(b, uint64(s.start))
	b = protowire.AppendTag(b, 8, protowire.Fixed64Type) // end_time_unix_nano
	b = protowire.AppendFixed64(b, uint64(s.end))

	const attrs = 9 // attributes
	if method == "_OTHER" {
		b = appendStrAttr(b, attrs, "http.request.method_original", s.method)
	}
	b = appendStrAttr(b, attrs, "http.request.method", method)
	errorType := s.errorType
	if s.outcome == pair.Complete {
		b = appendIntAttr(b, attrs, "http.response.status_code", int64(s.status))
	}
	b = appendStrAttr(b, attrs, "error.type", errorType)
	if s.grpc {
		// RPC semantic conventions: the path is /{service}/{method}.
		svc, m, _ := strings.Cut(strings.TrimPrefix(s.target, "/"), "/")
		b = appendStrAttr(b, attrs, "rpc.system", "grpc")
		b = appendStrAttr(b, attrs, "rpc.service", svc)
		b = appendStrAttr(b, attrs, "rpc.method", m)
		b = appendIntAttr(b, attrs, "rpc.grpc.status_code", int64(s.grpcStatus))
	}
	b = appendStrAttr(b, attrs, "http.route", s.route)
	path, _, _ := strings.Cut(s.target, "?")
	b = appendStrAttr(b, attrs, "url.path", path)
	// server.address is the name the client used (Host), as the
	// conventions ask; the socket is network.local.*.
	var local [64]byte
	serverIP := s.server.Addr().AppendTo(local[:0])
	if host, port, ok := splitHost(s.host); ok {
		b = appendStrAttr(b, attrs, "server.address", host)
		if port == 0 {
			port = int(s.server.Port())
		}
		b = appendIntAttr(b, attrs, "server.port", int64(port))
	} else {
		b = appendStrAttr(b, attrs, "server.address", string(serverIP))
		b = appendIntAttr(b, attrs, "server.port", int64(s.server.Port()))
	}
	var peer [64]byte
	b = appendStrAttr(b, attrs, "client.address", string(s.client.Addr().AppendTo(peer[:0])))
	b = appendIntAttr(b, attrs, "client.port", int64(s.client.Port()))
	b = appendStrAttr(b, attrs, "network.local.address", string(serverIP))
	b = appendIntAttr(b, attrs, "network.local.port", int64(s.server.Port()))
	b = appendStrAttr(b, attrs, "network.protocol.version", s.version)
	b = appendStrAttr(b, attrs, "user_agent.original", s.userAgent)
	b = appendBoolAttr(b, attrs, "rauta.observer", true)

	// Server spans: 5xx, gRPC server errors and no response are errors;
	// 4xx (and the caller's gRPC statuses) are the client's.
	if errorType != "" {
		b = protowire.AppendTag(b, 15, protowire.BytesType) // status
		b = protowire.AppendVarint(b, 2)
		b = protowire.AppendTag(b, 3, protowire.VarintType) // code
		b = protowire.AppendVarint(b, uint64(tracepb.Status_STATUS_CODE_ERROR))
	}
	flags := uint32(s.flags) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if s.parent != ([8]byte{}) {
		flags |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK) // the parent came over the wire
	}
	b = protowire.AppendTag(b, 16, protowire.Fixed32Type) // flags
	return protowire.AppendFixed32(b, flags)
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

// KeyValue{key = 1, value = 2: AnyValue{string_value = 1, bool_value = 2,
// int_value = 3}} as field num of the enclosing message; an empty string
// value is left out.

func appendStrAttr(b []byte, num protowire.Number, k, v string) []byte {
	if v == "" {
		return b
	}
	return appendAttr(b, num, k, protowire.SizeTag(1)+protowire.SizeBytes(len(v)), func(b []byte) []byte {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		return protowire.AppendString(b, v)
	})
}

func appendIntAttr(b []byte, num protowire.Number, k string, v int64) []byte {
	return appendAttr(b, num, k, protowire.SizeTag(3)+protowire.SizeVarint(uint64(v)), func(b []byte) []byte {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(v))
	})
}

func appendBoolAttr(b []byte, num protowire.Number, k string, v bool) []byte {
	return appendAttr(b, num, k, protowire.SizeTag(2)+1, func(b []byte) []byte {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v))
	})
}

// appendAttr writes the KeyValue around an AnyValue of size anyLen that
// value appends.
func appendAttr(b []byte, num protowire.Number, k string, anyLen int, value func([]byte) []byte) []byte {
	kvLen := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(anyLen)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvLen))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, k)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyLen))
	return value(b)
}
