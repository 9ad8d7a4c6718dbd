// Package export publishes what the observer sees: Prometheus metrics with
// OpenTelemetry HTTP semantic-convention names, JSON lines, and OTLP/HTTP
// metrics and logs.
package export

import (
	"strconv"

	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/h2parse"
	"github.com/false-systems/rauta/internal/observe/pair"
)

// Counters are the observer's own health counters, snapshotted by the
// pipeline and read by exporters at scrape/export time.
type Counters struct {
	Kernel            capture.KernelStats
	Pair              pair.Stats
	RequestMalformed  uint64 // request heads that are not HTTP/1.x
	RequestTruncated  uint64 // request heads cut before method and target
	ResponseMalformed uint64
	ResponseTruncated uint64
	// TargetsTruncated: exchanges whose request-target was cut (by the end
	// of the capture window or at httpparse.MaxTargetLen).
	TargetsTruncated uint64
	DecodeErrors     uint64 // ring records that did not decode
	LabelOverflows   uint64 // routes/services replaced by _OTHER
	LabelEvictions   uint64 // idle routes/services that made room for new ones
	JSONDropped      uint64 // JSON lines dropped: the output queue was full
	Interfaces       InterfaceStats
	Spans            SpanStats // zero when spans are not exported
	TLS              TLSStats  // zero without -tls-uprobes
	H2               h2parse.Stats
}

// TLSStats describe the TLS library probes (internal/observe/tlsprobe).
type TLSStats struct {
	Events    uint64 // records delivered by the kernel
	RingFull  uint64 // records lost: TLS ring full
	Truncated uint64 // records cut at the capture window
	Malformed uint64 // records that did not decode
	// CgroupUnread: records whose process's cgroup could not be read
	// (the process had exited), so their pod is not known.
	CgroupUnread uint64
	Libraries    int // library files probed now
}

// InterfaceStats describe the attachments to observed interfaces.
type InterfaceStats struct {
	Attached     int    // interfaces with the programs attached now
	Attaches     uint64 // attachments made (at start, discovered, recreated)
	Detaches     uint64 // attachments removed (interface deleted or no longer selected)
	AttachErrors uint64 // attachments that failed (retried at the next change or resync)
	Refused      uint64 // selected interfaces not attached because the cap was reached
	Reattached   uint64 // attachments to named interfaces deleted and created again
}

// DurationBuckets are the OpenTelemetry-recommended boundaries for
// http.server.request.duration, with finer sub-millisecond steps because
// in-cluster hops are often that fast.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// SizeBuckets for body sizes in bytes.
var SizeBuckets = []float64{0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304}

// knownMethod bounds the method label (semantic conventions: anything else
// is _OTHER). A switch, not a map: it runs for every exchange.
func knownMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE":
		return true
	}
	return false
}

// labels are the bounded attribute values of one observation.
type labels struct {
	method, status, route, service, namespace, errorType string
	scheme                                               string
	// version: network.protocol.version ("1.0", "1.1", "2"); grpcStatus:
	// rpc.grpc.status_code of a complete gRPC exchange, else "".
	version, grpcStatus string
}

// schemeOf is url.scheme: "https" for plaintext read from inside TLS
// (library probes), "http" for what the packet programs parsed.
func schemeOf(o *detect.Observation) string {
	if o.Stream != 0 {
		return "https"
	}
	return "http"
}

// grpcCodeNames are the gRPC status codes' names (google.golang.org/grpc/
// codes), the error.type of a gRPC server error.
var grpcCodeNames = [17]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// grpcStatusTexts avoids formatting the gRPC status per exchange.
var grpcStatusTexts = func() (t [len(grpcCodeNames)]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// errorTypeOf is error.type: the 5xx code, the gRPC status name of a gRPC
// server error (pair.Exchange.ServerError), or the outcome (reset,
// timeout); "" for a success.
func errorTypeOf(o *detect.Observation) string {
	switch {
	case o.Outcome != pair.Complete:
		return o.Outcome.String()
	case o.Status >= 500:
		return statusText(o.Status) // semantic conventions: the status code
	case o.ServerError():
		return grpcCodeNames[o.GRPCStatus]
	}
	return ""
}

// statusTexts avoids formatting the status code per exchange.
var statusTexts = func() (t [600]string) {
	for i := 100; i < 600; i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 100 && code < 600 {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

func labelsOf(o *detect.Observation) labels {
	l := labels{method: o.Method, route: o.Route, service: o.Service, namespace: o.Namespace, scheme: schemeOf(o), version: o.Version, errorType: errorTypeOf(o)}
	if !knownMethod(l.method) {
		l.method = "_OTHER"
	}
	if o.Outcome == pair.Complete {
		l.status = statusText(o.Status)
		if o.GRPC && int(o.GRPCStatus) < len(grpcCodeNames) {
			l.grpcStatus = grpcStatusTexts[o.GRPCStatus]
		}
	}
	return l
}
