package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/ir"
)

// TestInFlightRequestsFinish checks graceful endings: a request in flight
// when its listener is removed, and one in flight when Run's context ends,
// both complete; new connections are refused afterwards.
func TestInFlightRequestsFinish(t *testing.T) {
	slow := slowBackend(t, 300*time.Millisecond)
	one := httpListener("one", catchAll(prefixRoute("r", "/", slow.backend(1))))
	two := httpListener("two", catchAll(prefixRoute("r", "/", slow.backend(1))))
	s, err := New(Options{DefaultAddress: "127.0.0.1", Registerer: prometheus.NewRegistry(), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&ir.Snapshot{Listeners: []ir.Listener{one, two}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	defer cancel()

	type result struct {
		status int
		body   int
		err    error
	}
	inflight := func(url string) chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := newClient().Get(url)
			if err != nil {
				ch <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- result{status: resp.StatusCode, body: len(b), err: err}
		}()
		return ch
	}
	twoURL := "http://" + s.Addr("two").String() + "/"
	oneURL := "http://" + s.Addr("one").String() + "/"
	removed := inflight(twoURL)
	time.Sleep(100 * time.Millisecond) // the request reached the slow backend
	if err := s.Apply(&ir.Snapshot{Listeners: []ir.Listener{one}}); err != nil {
		t.Fatal(err)
	}
	if r := <-removed; r.err != nil || r.status != http.StatusOK || r.body == 0 {
		t.Errorf("request in flight on a removed listener: %+v", r)
	}

	stopping := inflight(oneURL)
	time.Sleep(100 * time.Millisecond)
	cancel()
	if r := <-stopping; r.err != nil || r.status != http.StatusOK || r.body == 0 {
		t.Errorf("request in flight at shutdown: %+v", r)
	}
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := newClient().Get(oneURL); err == nil {
		t.Error("listener still serves after Run returned")
	}
	if err := s.Apply(&ir.Snapshot{}); err == nil {
		t.Error("Apply after Run returned succeeded")
	}
}
