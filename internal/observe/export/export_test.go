package export

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/h2parse"
	"github.com/false-systems/rauta/internal/observe/pair"
)

func observation(status int, outcome pair.Outcome, lat time.Duration) *detect.Observation {
	return &detect.Observation{
		Exchange: &pair.Exchange{
			Client: netip.MustParseAddrPort("10.0.0.1:5000"), Server: netip.MustParseAddrPort("10.0.0.2:80"),
			Method: "GET", Target: "/users/1?x", Status: status, Outcome: outcome,
			ReqContentLength: -1, RespContentLength: 10, StartNS: 1000, EndNS: 1000 + uint64(lat), Version: "1.1",
		},
		Time: time.Unix(1700000000, 0), Service: "web", Namespace: "shop", Route: "/users/:num",
	}
}

func counters() Counters {
	return Counters{
		Kernel:           capture.KernelStats{Events: 10, RingbufFull: 3, NonHTTP: 4},
		Pair:             pair.Stats{UnmatchedResponses: 2, Evictions: 1, Open: 5, Exchanges: 4},
		H2:               h2parse.Stats{Conns: 3, Exchanges: 2, Dropped: 6, Desyncs: [5]uint64{h2parse.DesyncGap: 1, h2parse.DesyncHPACK: 2}},
		RequestMalformed: 7, ResponseTruncated: 1,
	}
}

func TestPrometheusNamesLabelsAndCounters(t *testing.T) {
	p := NewProm(counters)
	p.Record(observation(200, pair.Complete, 3*time.Millisecond))
	p.Record(observation(503, pair.Complete, 30*time.Millisecond))
	p.Record(observation(0, pair.Reset, time.Millisecond))
	o := observation(200, pair.Complete, time.Millisecond)
	o.Method = "FOO"
	p.Record(o)
	tlsObs := observation(201, pair.Complete, time.Millisecond)
	tlsObs.Stream, tlsObs.PID = 0x5555deadbee0, 42 // plaintext from inside TLS
	p.Record(tlsObs)
	// gRPC over h2c: UNAVAILABLE is a server error, NOT_FOUND the caller's.
	g := observation(200, pair.Complete, time.Millisecond)
	g.Version, g.GRPC, g.GRPCStatus, g.Route = "2", true, 14, "/shop.Cart/Add"
	p.Record(g)
	g.GRPCStatus = 5
	p.Record(g)
	p.Detection(&detect.Event{Kind: detect.KindSlowResponse, Service: "web"})

	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(body)
	for _, want := range []string{
		`http_server_request_duration_seconds_count{error_type="",http_request_method="GET",http_response_status_code="200",http_route="/users/:num",k8s_namespace_name="shop",network_protocol_version="1.1",rpc_grpc_status_code="",service_name="web",url_scheme="http"} 1`,
		`http_server_request_duration_seconds_count{error_type="503",http_request_method="GET",http_response_status_code="503",http_route="/users/:num",k8s_namespace_name="shop",network_protocol_version="1.1",rpc_grpc_status_code="",service_name="web",url_scheme="http"} 1`,
		`http_server_request_duration_seconds_count{error_type="reset",http_request_method="GET",http_response_status_code="",http_route="/users/:num",k8s_namespace_name="shop",network_protocol_version="1.1",rpc_grpc_status_code="",service_name="web",url_scheme="http"} 1`,
		`http_request_method="_OTHER"`,
		`http_server_request_duration_seconds_count{error_type="",http_request_method="GET",http_response_status_code="201",http_route="/users/:num",k8s_namespace_name="shop",network_protocol_version="1.1",rpc_grpc_status_code="",service_name="web",url_scheme="https"} 1`,
		`http_server_response_body_size_bytes_sum{error_type="",http_request_method="GET",http_response_status_code="200",http_route="/users/:num",k8s_namespace_name="shop",network_protocol_version="1.1",rpc_grpc_status_code="",service_name="web",url_scheme="http"} 10`,
		`http_server_request_duration_seconds_count{error_type="UNAVAILABLE",http_request_method="GET",http_response_status_code="200",http_route="/shop.Cart/Add",k8s_namespace_name="shop",network_protocol_version="2",rpc_grpc_status_code="14",service_name="web",url_scheme="http"} 1`,
		`http_server_request_duration_seconds_count{error_type="",http_request_method="GET",http_response_status_code="200",http_route="/shop.Cart/Add",k8s_namespace_name="shop",network_protocol_version="2",rpc_grpc_status_code="5",service_name="web",url_scheme="http"} 1`,
		`rauta_observer_exchanges_total 6`,
		`rauta_observer_h2_connections_total 3`,
		`rauta_observer_h2_dropped_streams_total 6`,
		`rauta_observer_h2_desyncs_total{reason="gap"} 1`,
		`rauta_observer_h2_desyncs_total{reason="hpack"} 2`,
		`rauta_observer_h2_desyncs_total{reason="truncated"} 0`,
		`rauta_observer_detections_total{kind="slow_response",service_name="web"} 1`,
		`rauta_observer_ringbuf_dropped_total 3`,
		`rauta_observer_kernel_events_total 10`,
		`rauta_observer_parse_failures_total{message="request",reason="malformed"} 7`,
		`rauta_observer_parse_failures_total{message="response",reason="truncated"} 1`,
		`rauta_observer_unmatched_responses_total 2`,
		`rauta_observer_tracked_connections 5`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, "/users/1") {
		t.Error("raw path leaked into labels")
	}
	if strings.Contains(text, "http_server_request_body_size_bytes_count") {
		t.Error("request body histogram recorded without Content-Length")
	}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSON(&buf)
	if err := j.Exchange(observation(201, pair.Complete, 2*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := j.Event(&detect.Event{Kind: detect.KindProbeFailure, Service: "web", Reason: "status 503", Status: 503}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var ex ExchangeRecord
	if err := json.Unmarshal([]byte(lines[0]), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Type != "exchange" || ex.Scheme != "http" || ex.PID != 0 || ex.Status != 201 || ex.LatencyNS != 2e6 || ex.Route != "/users/:num" || ex.Target != "/users/1?x" {
		t.Fatalf("exchange %+v", ex)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["type"] != "event" || ev["kind"] != "probe_failure" || ev["reason"] != "status 503" {
		t.Fatalf("event %v", ev)
	}
}

// otlpReceiver is a minimal OTLP/HTTP receiver on loopback that decodes
// what arrives.
type otlpReceiver struct {
	mu      sync.Mutex
	metrics []*colmetrics.ExportMetricsServiceRequest
	logs    []*collogs.ExportLogsServiceRequest
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.URL.Path {
	case "/v1/metrics":
		m := &colmetrics.ExportMetricsServiceRequest{}
		if err := proto.Unmarshal(body, m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.metrics = append(r.metrics, m)
		out, _ := proto.Marshal(&colmetrics.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	case "/v1/logs":
		m := &collogs.ExportLogsServiceRequest{}
		if err := proto.Unmarshal(body, m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.logs = append(r.logs, m)
		out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	default:
		http.NotFound(w, req)
	}
}

func attr(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

func TestOTLPExportReachesReceiver(t *testing.T) {
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	o, err := NewOTLP(OTLPOptions{Endpoint: srv.URL, Interval: time.Hour, NodeName: "node-1"}, counters)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o.Record(ctx, observation(503, pair.Complete, 40*time.Millisecond))
	o.Record(ctx, observation(503, pair.Complete, 60*time.Millisecond))
	o.Detection(ctx, &detect.Event{Kind: detect.KindErrorSpike, Service: "web", Status: 503, ErrorRate: 0.5, BaselineErrorRate: 0.01, Time: time.Unix(1700000000, 0)})
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var found, foundDropped, foundParse bool
	for _, req := range rcv.metrics {
		for _, rm := range req.ResourceMetrics {
			if v := attr(rm.Resource.Attributes, "k8s.node.name"); v == nil || v.GetStringValue() != "node-1" {
				t.Errorf("resource attributes %v", rm.Resource.Attributes)
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					switch m.Name {
					case "http.server.request.duration":
						dp := m.GetHistogram().DataPoints
						if len(dp) != 1 || dp[0].Count != 2 || dp[0].GetSum() < 0.0999 || dp[0].GetSum() > 0.1001 {
							t.Errorf("histogram points %v", dp)
						}
						if v := attr(dp[0].Attributes, "http.response.status_code"); v == nil || v.GetIntValue() != 503 {
							t.Errorf("status attribute %v", dp[0].Attributes)
						}
						if v := attr(dp[0].Attributes, "http.route"); v == nil || v.GetStringValue() != "/users/:num" {
							t.Errorf("route attribute %v", dp[0].Attributes)
						}
						if m.Unit != "s" {
							t.Errorf("unit %q", m.Unit)
						}
						found = true
					case "rauta.observer.ringbuf.dropped":
						if dp := m.GetSum().DataPoints; len(dp) == 1 && dp[0].GetAsInt() == 3 {
							foundDropped = true
						}
					case "rauta.observer.parse_failures":
						for _, dp := range m.GetSum().DataPoints {
							if attr(dp.Attributes, "message").GetStringValue() == "request" && attr(dp.Attributes, "reason").GetStringValue() == "malformed" && dp.GetAsInt() == 7 {
								foundParse = true
							}
						}
					}
				}
			}
		}
	}
	if !found || !foundDropped || !foundParse {
		t.Fatalf("metrics missing: duration %v dropped %v parse %v (%d requests)", found, foundDropped, foundParse, len(rcv.metrics))
	}
	var logs int
	for _, req := range rcv.logs {
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					logs++
					if lr.EventName != "rauta.observer.error_spike" || lr.Body.GetStringValue() != "error_spike" {
						t.Errorf("log record %v", lr)
					}
					if v := attr(lr.Attributes, "rauta.error_rate"); v == nil || v.GetDoubleValue() != 0.5 {
						t.Errorf("log attributes %v", lr.Attributes)
					}
				}
			}
		}
	}
	if logs != 1 {
		t.Fatalf("got %d log records, want 1", logs)
	}
}

func TestOTLPRejectsBadEndpoint(t *testing.T) {
	for _, ep := range []string{"", "collector:4318", "ftp://x"} {
		if _, err := NewOTLP(OTLPOptions{Endpoint: ep}, counters); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}
