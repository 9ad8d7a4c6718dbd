package proxy

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// slowBackend answers after delay.
func slowBackend(t *testing.T, delay time.Duration) *echoBackend {
	be := newEchoBackend(t, "slow")
	inner := be.srv.Config.Handler
	be.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		inner.ServeHTTP(w, r)
	})
	return be
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) ir.Endpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := endpointOf(t, ln.Addr().String())
	ln.Close()
	return ep
}

// resetBackend accepts connections and resets them without answering.
func resetBackend(t *testing.T) ir.Endpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			c.Read(buf)
			c.(*net.TCPConn).SetLinger(0) // close with RST
			c.Close()
		}
	}()
	return endpointOf(t, ln.Addr().String())
}

func TestTimeoutsAndUpstreamErrors(t *testing.T) {
	slow := slowBackend(t, 2*time.Second)
	reqTimeout := prefixRoute("req-timeout", "/req", slow.backend(1))
	reqTimeout.Timeouts.Request = 100 * time.Millisecond
	beTimeout := prefixRoute("be-timeout", "/be", slow.backend(1))
	beTimeout.Timeouts.BackendRequest = 100 * time.Millisecond
	dead := ir.Backend{Name: "default/dead:80", Weight: 1, Endpoints: []ir.Endpoint{closedPort(t)}}
	reset := ir.Backend{Name: "default/reset:80", Weight: 1, Endpoints: []ir.Endpoint{resetBackend(t)}}
	var logBuf syncBuffer
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		reqTimeout, beTimeout,
		prefixRoute("dead", "/dead", dead),
		prefixRoute("reset", "/reset", reset),
	))}}, Options{AccessLog: &logBuf})
	cl := newClient()
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/req", 504}, {"/be", 504}, {"/dead", 502}, {"/reset", 502},
	} {
		start := time.Now()
		resp, _, _ := do(t, cl, mustReq(t, "GET", p.url(t, "l")+tc.path, nil))
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("%s: answered after %v; the timeout did not cut the wait", tc.path, d)
		}
	}
	for _, b := range []string{"default/dead:80", "default/reset:80"} {
		if got := p.counter(t, "rauta_upstream_connect_errors_total", "backend", b); got != 1 {
			t.Errorf("rauta_upstream_connect_errors_total{backend=%q} = %v, want 1", b, got)
		}
	}
	if got := p.counter(t, "rauta_upstream_connect_errors_total", "backend", "default/slow:80"); got != 0 {
		t.Errorf("timeouts counted as connect errors: %v", got)
	}
}

func TestMetricsAndAccessLog(t *testing.T) {
	be := newEchoBackend(t, "a")
	var logBuf syncBuffer
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("HTTPRoute/default/web/rule/0", "/web", be.backend(1))))}}
	p := startProxy(t, snap, Options{AccessLog: &logBuf})
	cl := newClient()
	do(t, cl, mustReq(t, "GET", p.url(t, "l")+"/web/secret-id-123?token=x", nil))
	do(t, cl, mustReq(t, "GET", p.url(t, "l")+"/web/2", nil))
	do(t, cl, mustReq(t, "BREW", p.url(t, "l")+"/web/3", nil))
	do(t, cl, mustReq(t, "GET", p.url(t, "l")+"/unrouted/raw-path", nil))

	for _, tc := range []struct {
		route, method, code string
		want                float64
	}{
		{"HTTPRoute/default/web/rule/0", "GET", "200", 2},
		{"HTTPRoute/default/web/rule/0", "_OTHER", "200", 1},
		{"", "GET", "404", 1},
	} {
		got := p.histogramCount(t, "http_server_request_duration_seconds", "gateway", "default/gw", "http_route", tc.route,
			"http_request_method", tc.method, "http_response_status_code", tc.code, "url_scheme", "http", "network_protocol_version", "1.1")
		if got != tc.want {
			t.Errorf("http_server_request_duration_seconds{http_route=%q,http_request_method=%s,http_response_status_code=%s} count = %v, want %v", tc.route, tc.method, tc.code, got, tc.want)
		}
	}
	// Each attempt sent to the backend: by backend, exact status.
	if got := p.histogramCount(t, "http_client_request_duration_seconds", "backend", "default/a:80", "http_request_method", "GET",
		"http_response_status_code", "200", "error_type", ""); got != 2 {
		t.Errorf("http_client_request_duration_seconds{backend=default/a:80,GET,200} count = %v, want 2", got)
	}
	// No label ever carries a raw path or an unknown method.
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	histograms := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "secret") || strings.Contains(l.GetValue(), "unrouted") || l.GetValue() == "BREW" {
					t.Errorf("metric %s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
			if mf.GetName() == "http_server_request_duration_seconds" {
				histograms += int(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if histograms != 4 {
		t.Errorf("duration histogram counted %d requests, want 4", histograms)
	}

	p.flushAccessLog()
	lines := bytes.Split(bytes.TrimSpace(logBuf.Bytes()), []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("access log has %d lines, want 4:\n%s", len(lines), logBuf.Bytes())
	}
	var first map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatalf("access log line is not JSON: %v: %s", err, lines[0])
	}
	for _, k := range []string{"time", "gateway", "route", "method", "host", "path", "protocol", "status", "bytes", "duration_ms",
		"upstream", "upstream_status", "error", "client", "user_agent", "request_id", "trace_id"} {
		if _, ok := first[k]; !ok {
			t.Errorf("access log line lacks %q: %s", k, lines[0])
		}
	}
	if first["route"] != "HTTPRoute/default/web/rule/0" || first["path"] != "/web/secret-id-123" || first["status"] != float64(200) ||
		first["upstream"] != be.srv.Listener.Addr().String() || first["client"] != "127.0.0.1" || first["gateway"] != "default/gw" ||
		first["protocol"] != "HTTP/1.1" || first["upstream_status"] != float64(200) || first["error"] != "" ||
		first["user_agent"] != "Go-http-client/1.1" || first["request_id"] == "" {
		t.Errorf("access log line has wrong values: %s", lines[0])
	}
	if first["bytes"].(float64) <= 0 {
		t.Errorf("access log bytes = %v", first["bytes"])
	}
	var last map[string]any
	json.Unmarshal(lines[3], &last)
	if last["status"] != float64(404) || last["route"] != "" || last["upstream"] != "" {
		t.Errorf("unrouted request logged as %s", lines[3])
	}
}
