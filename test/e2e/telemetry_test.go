package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/poll"
	"github.com/false-systems/rauta/internal/translate"
)

// accessEntry is the part of an access log line the tests check.
type accessEntry struct {
	Gateway        string `json:"gateway"`
	Route          string `json:"route"`
	Method         string `json:"method"`
	Host           string `json:"host"`
	Path           string `json:"path"`
	Status         int    `json:"status"`
	Protocol       string `json:"protocol"`
	UpstreamStatus int    `json:"upstream_status"`
	RequestID      string `json:"request_id"`
	UserAgent      string `json:"user_agent"`
}

// accessLog parses every stdout line as an access log entry.
func (g *gateway) accessLog() []accessEntry {
	g.t.Helper()
	var out []accessEntry
	sc := bufio.NewScanner(strings.NewReader(g.stdout.String()))
	for sc.Scan() {
		var e accessEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			g.t.Fatalf("access log line is not JSON: %v\n%s", err, sc.Text())
		}
		out = append(out, e)
	}
	return out
}

const (
	ruleAPI   = "httproute/default/tele/rule/api" // a named rule
	ruleOther = "httproute/default/tele/rule/1"   // an unnamed rule: its index
)

func startTelemetryGateway(t *testing.T, args ...string) (*gateway, int) {
	t.Helper()
	be := startBackend(t, "tele")
	ca := newCA(t)
	cert, key := ca.issue(t, 7, "tele.test")
	port, securePort := freePort(t), freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml": gatewayYAML("gw",
			listenerSpec{name: "http", port: port, protocol: "HTTP"},
			listenerSpec{name: "https", port: securePort, protocol: "HTTPS", hostname: "tele.test", certs: []string{"tele-cert"}}),
		"secret.yaml":   secretYAML("tele-cert", cert, key),
		"backends.yaml": servicesYAML(be),
		"routes.yaml": routeYAML("tele", []string{"tele.test"}, `  - name: api
    matches:
    - path:
        type: PathPrefix
        value: /api
`+to("tele")+catchAll("tele")),
	}, args...)
	return g, port
}

func TestTelemetry(t *testing.T) {
	g, port := startTelemetryGateway(t)
	c := newClient()
	sent := []struct {
		method, target string
		status         int
		route          string
	}{
		{"GET", "/api/users/123", 200, ruleAPI},
		{"GET", "/api/users/456", 200, ruleAPI},
		{"POST", "/other", 200, ruleOther},
		{"GET", "/status/404", 404, ruleOther},
		{"GET", "/status/503", 503, ruleOther},
	}
	for _, s := range sent {
		if res := do(t, c, request(t, s.method, port, "tele.test", s.target)); res.status != s.status {
			t.Fatalf("%s %s: status %d, want %d", s.method, s.target, res.status, s.status)
		}
	}

	// The OpenTelemetry HTTP semantic conventions (docs/telemetry.md).
	const durations = "http_server_request_duration_seconds"
	t.Run(durations, func(t *testing.T) {
		fams := g.metrics()
		requireFamily(t, fams, durations)
		for _, w := range []struct {
			route, method, code string
			n                   float64
		}{
			{ruleAPI, "GET", "200", 2},
			{ruleOther, "POST", "200", 1},
			{ruleOther, "GET", "404", 1},
			{ruleOther, "GET", "503", 1},
		} {
			labels := map[string]string{"gateway": "default/gw", "http_route": w.route, "http_request_method": w.method,
				"http_response_status_code": w.code, "url_scheme": "http", "network_protocol_version": "1.1"}
			if got := counterSum(fams, durations, labels); got != w.n {
				t.Errorf("%s%v count = %v, want %v", durations, labels, got, w.n)
			}
		}
		for _, m := range fams[durations].Metric {
			for k, v := range labelMap(m) {
				if strings.Contains(v, "/api/users") || strings.Contains(v, "/status/") {
					t.Errorf("label %s=%q holds a raw request path", k, v)
				}
			}
		}
		ms := series(fams, durations, map[string]string{"http_route": ruleAPI, "http_request_method": "GET", "http_response_status_code": "200"})
		if len(ms) != 1 || ms[0].Histogram == nil {
			t.Fatalf("want one histogram series for %s GET 200, got %d", ruleAPI, len(ms))
		}
		h := ms[0].Histogram
		if h.GetSampleCount() != 2 || len(h.Bucket) < 5 {
			t.Errorf("histogram: %d samples in %d buckets, want 2 samples and several buckets", h.GetSampleCount(), len(h.Bucket))
		}
		last := h.Bucket[len(h.Bucket)-1]
		if last.GetCumulativeCount() != 2 {
			t.Errorf("largest bucket (le=%v) counts %d, want 2", last.GetUpperBound(), last.GetCumulativeCount())
		}
		for _, gone := range []string{"rauta_requests_total", "rauta_request_duration_seconds"} {
			if _, ok := fams[gone]; ok {
				t.Errorf("/metrics still has %s (replaced, docs/telemetry.md)", gone)
			}
		}
	})

	t.Run("http_client_request_duration_seconds", func(t *testing.T) {
		fams := g.metrics()
		requireFamily(t, fams, "http_client_request_duration_seconds")
		if got := counterSum(fams, "http_client_request_duration_seconds", map[string]string{"http_response_status_code": "503", "error_type": "503"}); got != 1 {
			t.Errorf("client attempts answered 503: %v, want 1", got)
		}
	})

	t.Run("rauta_build_info", func(t *testing.T) {
		ms := series(g.metrics(), "rauta_build_info", nil)
		if len(ms) != 1 || ms[0].Gauge.GetValue() != 1 || labelMap(ms[0])["version"] == "" {
			t.Errorf("rauta_build_info: %v, want one series with value 1 and a version label", ms)
		}
	})

	t.Run("healthz and readyz", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if status, body := g.adminGet(p); status != http.StatusOK {
				t.Errorf("%s: %d %s", p, status, body)
			}
		}
	})

	t.Run("config_dump", func(t *testing.T) {
		status, body := g.adminGet("/config_dump")
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		var snap ir.Snapshot
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&snap); err != nil {
			t.Fatalf("not an IR snapshot: %v\n%s", err, body)
		}
		var found bool
		for _, l := range snap.Listeners {
			if l.Port == uint32(port) && l.Protocol == ir.ProtocolHTTP && l.Gateway == "default/gw" {
				found = true
			}
		}
		if !found || len(snap.Listeners) != 2 {
			t.Errorf("listeners %+v: want 2, one HTTP on port %d of default/gw", snap.Listeners, port)
		}
		if !strings.Contains(body, ruleAPI) {
			t.Errorf("dump does not show route %s", ruleAPI)
		}
		if strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, "BEGIN CERTIFICATE") {
			t.Errorf("config dump leaks certificate or key material")
		}
	})

	t.Run("status", func(t *testing.T) {
		status, body := g.adminGet("/status")
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		var st translate.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("not a status document: %v\n%s", err, body)
		}
		accepted := false
		for _, gw := range st.Gateways {
			if gw.Namespace != "default" || gw.Name != "gw" {
				continue
			}
			for _, c := range gw.Status.Conditions {
				if c.Type == "Accepted" && c.Status == "True" {
					accepted = true
				}
			}
		}
		if !accepted {
			t.Errorf("no Accepted=True condition for Gateway default/gw:\n%s", body)
		}
	})

	t.Run("access log", func(t *testing.T) {
		var entries []accessEntry
		poll.Require(t, 5*time.Second, "one access log line per request", func() bool {
			entries = g.accessLog()
			return len(entries) >= len(sent)
		})
		if len(entries) != len(sent) {
			t.Fatalf("%d access log lines for %d requests", len(entries), len(sent))
		}
		// Lines are written as responses end, so match them by their
		// (unique) paths rather than by order.
		byPath := make(map[string]accessEntry, len(entries))
		for _, e := range entries {
			byPath[e.Path] = e
		}
		for _, s := range sent {
			e, ok := byPath[s.target]
			if !ok {
				t.Errorf("no access log line for %s %s", s.method, s.target)
				continue
			}
			if e.Route != s.route || e.Status != s.status || e.Method != s.method || e.Host != "tele.test" || e.Gateway != "default/gw" {
				t.Errorf("line for %s = %+v, want %s route %s status %d", s.target, e, s.method, s.route, s.status)
			}
			if e.Protocol != "HTTP/1.1" || e.UpstreamStatus != s.status || e.RequestID == "" || e.UserAgent == "" {
				t.Errorf("line for %s = %+v, want protocol, upstream status %d, request ID and user agent", s.target, e, s.status)
			}
		}
	})
}

func TestAccessLogOff(t *testing.T) {
	g, port := startTelemetryGateway(t, "-access-log=false")
	c := newClient()
	for i := 0; i < 3; i++ {
		if res := get(t, c, port, "tele.test", "/api/"+strconv.Itoa(i)); res.status != http.StatusOK {
			t.Fatalf("status %d", res.status)
		}
	}
	// The requests are counted, so they are finished; none may be logged.
	poll.Require(t, 5*time.Second, "the requests are counted", func() bool {
		return counterSum(g.metrics(), "http_server_request_duration_seconds", map[string]string{"http_route": ruleAPI}) == 3
	})
	if out := g.stdout.String(); out != "" {
		t.Errorf("-access-log=false still wrote to stdout:\n%s", out)
	}
}
