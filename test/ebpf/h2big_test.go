package ebpf

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestH2cLargeBodiesAllReported: responses of 0-199 KB on one h2c
// connection. The veth hands TC whole GSO segments (up to 64 KB) holding
// several DATA frames; the kernel walks their frame headers past the
// 4096-byte window and reports them, so every response is reported,
// exactly, with no desynchronisation. Before the walk, 185-194 of 200
// were reported, then a cut that hid a frame header ended the
// connection's reporting (counted as a truncated desync).
func TestH2cLargeBodiesAllReported(t *testing.T) {
	tp := newTopology(t)
	obs := startObserver(t, tp, "tcx", nil)
	serveH2c(t, tp, 8081, func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/big/"))
		w.WriteHeader(h2Status(id))
		_, _ = w.Write(make([]byte, id*1000))
	})
	hc := h2cClient(t, tp)
	for id := range 200 {
		res, err := hc.Get(fmt.Sprintf("http://%s:8081/big/%d", tp.serverIP, id))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	// Counters are published at the pipeline's next tick (250 ms).
	for end := time.Now().Add(5 * time.Second); obs.metric(t, "rauta_observer_h2_connections_total", "") < 1 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	recs := obs.out.h2records(t)
	for _, r := range recs {
		id, err := strconv.Atoi(strings.TrimPrefix(r.Target, "/big/"))
		if err != nil || r.Status != h2Status(id) || r.Outcome != "complete" {
			t.Errorf("mis-reported: %+v", r)
		}
	}
	desyncs := obs.metric(t, "rauta_observer_h2_desyncs_total", "")
	t.Logf("%d of 200 reported; desyncs %v (truncated %v), dropped streams %v, segments longer than the window %v", len(recs), desyncs,
		obs.metric(t, "rauta_observer_h2_desyncs_total", `reason="truncated"`), obs.metric(t, "rauta_observer_h2_dropped_streams_total", ""),
		obs.metric(t, "rauta_observer_truncated_captures_total", ""))
	if len(recs) != 200 || desyncs != 0 {
		t.Errorf("%d of 200 reported, %v desyncs; want all, none", len(recs), desyncs)
	}
}
