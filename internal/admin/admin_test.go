package admin

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func newTestServer(t *testing.T, ready bool) *Server {
	t.Helper()
	s, err := New("127.0.0.1:0", prometheus.NewRegistry(), Source{
		Ready:  readiness(ready),
		Config: func() any { return map[string]int{"routes": 3} },
		Status: func() any { return []string{"ok"} },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	return s
}

func readiness(ready bool) func() error {
	return func() error {
		if ready {
			return nil
		}
		return errors.New("draining")
	}
}

func get(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestEndpoints(t *testing.T) {
	h := newTestServer(t, false).Handler()
	if code, body := get(h, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(h, "/readyz"); code != http.StatusServiceUnavailable || body != "draining\n" {
		t.Errorf("/readyz when not ready: %d %q, want 503 with the reason", code, body)
	}
	if code, body := get(h, "/config_dump"); code != 200 || !strings.Contains(body, `"routes": 3`) {
		t.Errorf("/config_dump: %d %q", code, body)
	}
	if code, _ := get(newTestServer(t, true).Handler(), "/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
}

// TestProfiling: /debug/pprof/ is served only when enabled.
func TestProfiling(t *testing.T) {
	s := newTestServer(t, true)
	if code, _ := get(s.Handler(), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without profiling: %d, want 404", code)
	}
	s.EnableProfiling()
	h := s.Handler()
	if code, body := get(h, "/debug/pprof/"); code != 200 || !strings.Contains(body, "allocs") {
		t.Errorf("/debug/pprof/: %d, index without the allocs profile", code)
	}
	if code, body := get(h, "/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap: %d %.80q", code, body)
	}
	if code, _ := get(h, "/debug/pprof/cmdline"); code != 200 {
		t.Errorf("/debug/pprof/cmdline: %d", code)
	}
}

// TestProbes: the probe server serves metrics and probes, never the
// configuration, the status or profiles.
func TestProbes(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "rauta_test_total", Help: "test"}))
	s, err := NewProbes("127.0.0.1:0", reg, readiness(false), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	s.EnableProfiling()
	h := s.Handler()
	if code, body := get(h, "/metrics"); code != 200 || !strings.Contains(body, "rauta_test_total") {
		t.Errorf("/metrics: %d %.80q", code, body)
	}
	if code, _ := get(h, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get(h, "/readyz"); code != http.StatusServiceUnavailable || body != "draining\n" {
		t.Errorf("/readyz: %d %q, want 503 draining", code, body)
	}
	for _, p := range []string{"/config_dump", "/status", "/debug/pprof/"} {
		if code, _ := get(h, p); code != http.StatusNotFound {
			t.Errorf("%s on the probe server: %d, want 404", p, code)
		}
	}
}

// TestRequestTimings: /debug/requests passes the cursor and a bounded
// limit to the source, /debug/requests/{id} answers 404 for an unknown
// ID; a probe server and a source without them serve neither.
func TestRequestTimings(t *testing.T) {
	var gotAfter uint64
	var gotLimit int
	s, err := New("127.0.0.1:0", prometheus.NewRegistry(), Source{
		Ready: readiness(true), Config: func() any { return nil }, Status: func() any { return nil },
		Requests: func(after uint64, limit int) any {
			gotAfter, gotLimit = after, limit
			return map[string]uint64{"next": 9}
		},
		Request: func(id string) (any, bool) { return map[string]string{"request_id": id}, id == "known" },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	h := s.Handler()
	if code, body := get(h, "/debug/requests?after=7&limit=99999"); code != 200 || gotAfter != 7 || gotLimit != maxRequestsLimit || !strings.Contains(body, `"next":9`) {
		t.Errorf("page: %d %q after %d limit %d", code, body, gotAfter, gotLimit)
	}
	if code, _ := get(h, "/debug/requests"); code != 200 || gotAfter != 0 || gotLimit != defaultRequestsLimit {
		t.Errorf("defaults: %d after %d limit %d", code, gotAfter, gotLimit)
	}
	if code, _ := get(h, "/debug/requests?after=x"); code != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", code)
	}
	if code, body := get(h, "/debug/requests/known"); code != 200 || !strings.Contains(body, `"request_id":"known"`) {
		t.Errorf("known id: %d %q", code, body)
	}
	if code, _ := get(h, "/debug/requests/other"); code != http.StatusNotFound {
		t.Errorf("unknown id: %d", code)
	}
	if code, _ := get(newTestServer(t, true).Handler(), "/debug/requests"); code != http.StatusNotFound {
		t.Errorf("without a source: %d", code)
	}
}
