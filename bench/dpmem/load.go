package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/ir"
)

// load is the optional request phase: requests spread over a few of the
// routes (routegen.Requests), whose Services' endpoints are replaced by one
// backend on 127.0.0.1 so no request leaves the machine; the other routes
// keep their endpoints, never dialled, so the configuration's memory is
// that of the idle measurement.
type load struct {
	requests int
	routes   int
	conns    int
	limit    time.Duration
	// close sends every request on a new connection, which allocates
	// (a goroutine and buffers per connection) where keep-alive
	// requests do not.
	close bool
	// scrapeEvery, when set, fetches /metrics from scrapeURL that often
	// during the load: garbage the request path does not make, so the
	// collector runs and the heap grows to its goal.
	scrapeEvery time.Duration
	scrapeURL   string

	reqs []routegen.Request
}

// backend starts the loopback backend and points the load's routes at it.
func (ld *load) backend(snap *ir.Snapshot, n int) (stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := []byte(strings.Repeat("x", 1024))
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	port := uint32(ln.Addr().(*net.TCPAddr).Port)

	ld.reqs = routegen.Requests(n, ld.routes)
	targets := map[string]bool{}
	for _, r := range ld.reqs {
		ns, name, _ := strings.Cut(r.Route, "/")
		targets[ns+"/"+name+":80"] = true // the IR backend name of the route's Service
	}
	local := []ir.Endpoint{{Address: "127.0.0.1", Port: port}}
	found := map[string]bool{}
	for i := range snap.Listeners {
		for j := range snap.Listeners[i].VirtualHosts {
			rs := snap.Listeners[i].VirtualHosts[j].Routes
			for k := range rs {
				for b := range rs[k].Backends {
					// A new list: the translator shares lists between routes.
					if be := &rs[k].Backends[b]; targets[be.Name] {
						be.Endpoints, found[be.Name] = local, true
					}
				}
			}
		}
	}
	if len(found) != len(targets) {
		_ = srv.Close()
		return nil, fmt.Errorf("load: %d of %d routes' backends found in the IR", len(found), len(targets))
	}
	return func() { _ = srv.Close() }, nil
}

// run sends the requests over conns keep-alive connections, stopping at
// the time limit, and says how many got 200 and how long it took.
func (ld *load) run(base string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: ld.conns, MaxConnsPerHost: ld.conns, DisableCompression: true, DisableKeepAlives: ld.close}}
	defer client.CloseIdleConnections()
	var next, ok, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(ld.limit)
	start := time.Now()
	var wg sync.WaitGroup
	done := make(chan struct{})
	var scrapes atomic.Int64
	if ld.scrapeEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(ld.scrapeEvery)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				if resp, err := client.Get(ld.scrapeURL); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					scrapes.Add(1)
				}
			}
		}()
	}
	var senders sync.WaitGroup
	for c := 0; c < ld.conns; c++ {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(ld.requests) {
					return
				}
				r := ld.reqs[int(i)%len(ld.reqs)]
				req, err := http.NewRequest(r.Method, base+r.Path, nil)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				req.Host = r.Host
				for k, v := range r.Header {
					req.Header[k] = v
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, errors.New(resp.Status+" for "+r.Host+r.Path))
				}
			}
		}()
	}
	senders.Wait()
	took := time.Since(start)
	close(done)
	wg.Wait()
	conns := fmt.Sprintf("over %d connections", ld.conns)
	if ld.close {
		conns = fmt.Sprintf("each on a new connection, %d at a time,", ld.conns)
	}
	out := fmt.Sprintf("%d requests %s to %d routes in %.1f s, %d answered 200, %d scrapes", ok.Load()+failed.Load(), conns, ld.routes, took.Seconds(), ok.Load(), scrapes.Load())
	if err, _ := firstErr.Load().(error); err != nil {
		return out, fmt.Errorf("%s; first failure: %w", out, err)
	}
	return out, nil
}
