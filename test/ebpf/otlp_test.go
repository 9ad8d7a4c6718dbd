package ebpf

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/false-systems/rauta/internal/observe"
)

// otlpSink is a small OTLP/HTTP receiver on loopback that decodes what
// arrives and keeps the latest totals.
type otlpSink struct {
	mu            sync.Mutex
	durationCount map[int64]uint64 // by http.response.status_code, latest cumulative
	logEvents     map[string]int   // by event name
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/v1/metrics":
		var req colmetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != "http.server.request.duration" {
						continue
					}
					counts := map[int64]uint64{}
					for _, dp := range m.GetHistogram().DataPoints {
						for _, a := range dp.Attributes {
							if a.Key == "http.response.status_code" {
								counts[a.Value.GetIntValue()] += dp.Count
							}
						}
					}
					s.durationCount = counts
				}
			}
		}
	case "/v1/logs":
		var req collogs.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					s.logEvents[lr.EventName]++
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

// TestOTLPExportFromRealTraffic runs the observer with an OTLP endpoint on
// loopback and checks what the receiver decodes against what was sent.
func TestOTLPExportFromRealTraffic(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	sink := &otlpSink{logEvents: map[string]int{}}
	rcv := httptest.NewServer(sink)
	defer rcv.Close()
	obs := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.OTLPEndpoint = rcv.URL
		c.OTLPInterval = 200 * time.Millisecond
	})

	c := httpClient(tp, true)
	for i := range 7 {
		do(t, c, "GET", fmt.Sprintf("http://%s/ok?o=%d", addr, i), "")
	}
	for i := range 3 {
		do(t, c, "GET", fmt.Sprintf("http://%s/status/502?o=%d", addr, i), "")
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/status/503?probe=1", nil)
	req.Header.Set("User-Agent", "kube-probe/1.36")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		sink.mu.Lock()
		ok := sink.durationCount[200] == 7 && sink.durationCount[502] == 3 && sink.durationCount[503] == 1 &&
			sink.logEvents["rauta.observer.probe_failure"] == 1
		got := fmt.Sprintf("durations %v, events %v", sink.durationCount, sink.logEvents)
		sink.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OTLP receiver has %s; want 7x200, 3x502, 1x503 and one probe_failure event", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	obs.stop(t)
}
