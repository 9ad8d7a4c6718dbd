package join

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/admin"
	"github.com/false-systems/rauta/internal/reqtiming"
)

// adminWith serves the gateway admin port's /debug/requests (the admin
// package's own handler) over records 1..n, until the returned stop.
func adminWith(t *testing.T, n int) (url string, stop func()) {
	t.Helper()
	page := func(after uint64, limit int) any {
		p := reqtiming.Page{Next: uint64(n), Records: []reqtiming.Record{}}
		for seq := after + 1; seq <= uint64(n) && len(p.Records) < limit; seq++ {
			p.Records = append(p.Records, reqtiming.Record{Seq: seq, RequestID: "r"})
		}
		return p
	}
	src := admin.Source{Config: func() any { return nil }, Status: func() any { return nil },
		Requests: page, Request: func(string) (any, bool) { return nil, false }}
	srv, err := admin.New("127.0.0.1:0", prometheus.NewRegistry(), src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return "http://" + srv.Addr().String(), stop
}

// TestPollProbe: a probing poller takes a gateway's records and, when the
// gateway stops answering, returns the cursor it reached (one failure
// counted: it had answered); started again from that cursor on a
// gateway with more records, it offers only the new ones. Where nothing
// answers, it returns at once and counts nothing: most namespaces a
// pattern matches hold no gateway.
func TestPollProbe(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	j := New(DefaultConfig(), prometheus.DefBuckets)
	url, stop := adminWith(t, 3)
	po := PollOptions{URL: url, Interval: 10 * time.Millisecond, Limit: 100, Probe: true}
	ret := make(chan uint64, 1)
	go func() { ret <- Poll(context.Background(), po, j, log) }()
	for deadline := time.Now().Add(5 * time.Second); j.Stats().Received < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("records not fetched within 5s: %+v", j.Stats())
		}
	}
	if n := j.answering.Load(); n != 1 {
		t.Errorf("answering gateways %d while polled, want 1", n)
	}
	stop()
	after := <-ret
	if s := j.Stats(); after != 3 || s.Received != 3 || s.PollErrors != 1 || j.answering.Load() != 0 {
		t.Fatalf("after the gateway stopped: cursor %d, %+v, answering %d; want 3, 3 received, 1 error, 0", after, s, j.answering.Load())
	}

	url2, stop2 := adminWith(t, 5)
	po.URL, po.After = url2, after
	go func() { ret <- Poll(context.Background(), po, j, log) }()
	for deadline := time.Now().Add(5 * time.Second); j.Stats().Received < 5; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("new records not fetched within 5s: %+v", j.Stats())
		}
	}
	stop2()
	if after := <-ret; after != 5 || j.Stats().Received != 5 {
		t.Errorf("restarted from 3: cursor %d, %d received; want 5 and 5 (no record twice)", after, j.Stats().Received)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	before := j.Stats().PollErrors
	po.URL, po.After = closed, 0
	if after := Poll(context.Background(), po, j, log); after != 0 || j.Stats().PollErrors != before {
		t.Errorf("nothing listening: cursor %d, errors %d -> %d; want 0 and none counted", after, before, j.Stats().PollErrors)
	}
}
