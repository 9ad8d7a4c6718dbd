package observe

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/enrich"
	"github.com/false-systems/rauta/internal/observe/export"
)

// TestPhantomHTTPMakesNoServices (issue 16 point 7): memcached/redis-like
// "GET key\r\n" lines on many servers used to time out as exchanges of
// services named after each server, filling the service budget so that a
// real service then became _OTHER.
func TestPhantomHTTPMakesNoServices(t *testing.T) {
	cfg := Defaults()
	cfg.JSONExchanges = true
	cfg.MaxServices = 4
	cfg.RequestTimeout = time.Second
	var out bytes.Buffer
	p, prom := newTestPipeline(t, cfg, &out)
	ts := uint64(time.Hour)
	for i := range 10 {
		srv := fmt.Sprintf("10.9.0.%d:11211", i+1)
		p.handle(ev(ts, "10.0.0.1:5000", srv, 1, "GET key\r\n"))
		p.handle(ev(ts, "10.0.0.1:5001", srv, 1, "GET user:1000\r\n"))
	}
	p.tick(ts+uint64(2*time.Second), p.local.Kernel, 0)
	ts += uint64(3 * time.Second)
	// Real traffic to five services that do not resolve (named ip:port).
	for i := range 4 {
		srv := fmt.Sprintf("10.8.0.%d:8080", i+1)
		p.handle(ev(ts, "10.0.0.1:6000", srv, 100, "GET /api/items HTTP/1.1\r\n\r\n"))
		p.handle(ev(ts+1000, srv, "10.0.0.1:6000", 200, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	}
	for _, l := range lines(t, &out) {
		if l.Type != "exchange" {
			continue
		}
		if strings.HasPrefix(l.Service, "10.9.") || l.Service == "_OTHER" || l.Route == "_OTHER" {
			t.Errorf("exchange %+v: phantom service, or a real one pushed out", l)
		}
	}
	if n := len(gatherRoutes(t, prom)); n != 4 {
		t.Errorf("%d duration series, want 4 (the real services only)", n)
	}
	p.publish()
	if c := p.counters(); c.Pair.UnansweredMalformed != 20 || c.RequestMalformed != 20 {
		t.Errorf("unanswered malformed %d, malformed %d; want 20 each", c.Pair.UnansweredMalformed, c.RequestMalformed)
	}
}

// TestScannerRoutesEvictedWhenIdle (issue 16 point 7): a scan of unique
// paths filled the route budget for ever; once its paths are idle for
// -label-idle they make room, and their series are deleted.
func TestScannerRoutesEvictedWhenIdle(t *testing.T) {
	cfg := Defaults()
	cfg.MaxRoutesPerService = 5
	cfg.LabelIdle = time.Minute
	var out bytes.Buffer
	p, prom := newTestPipeline(t, cfg, &out)
	const c, s = "10.0.0.1:40000", "10.0.0.2:8080"
	ts := uint64(time.Hour)
	seq := uint32(1)
	get := func(path string) {
		p.handle(ev(ts, c, s, seq, "GET "+path+" HTTP/1.1\r\n\r\n"))
		p.handle(ev(ts+1000, s, c, seq, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
		seq += 100
		ts += 2000
	}
	for i := range 20 {
		get(fmt.Sprintf("/wp-admin%d/x", i))
	}
	ts += uint64(2 * time.Minute)
	for _, r := range []string{"/api/users", "/api/orders", "/cart"} {
		get(r)
	}
	routes := gatherRoutes(t, prom)
	for _, want := range []string{"/api/users", "/api/orders", "/cart"} {
		if !slices.Contains(routes, want) {
			t.Errorf("route %s not labelled after the scan went idle; series routes %v", want, routes)
		}
	}
	if n := len(routes); n > 6 { // 5 routes + _OTHER
		t.Errorf("%d route series exported, want at most 6: %v", n, routes)
	}
}

// gatherRoutes lists the http_route of every duration series.
func gatherRoutes(t *testing.T, prom *export.Prom) []string {
	t.Helper()
	mfs, err := prom.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "http_route" {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	return out
}

// TestKnownRoutesPreferred (issue 16 point 7): routes known from
// enrichment label matching targets ahead of templates, even when the
// route budget is full of fresh values.
func TestKnownRoutesPreferred(t *testing.T) {
	cfg := Defaults()
	cfg.MaxRoutesPerService = 2
	var out bytes.Buffer
	p, prom := newTestPipeline(t, cfg, &out)
	static, err := enrich.ParseStatic([]byte("endpoints:\n- ip: 10.0.0.2\n  service: web\nroutes:\n  web: [/api/users, /checkout]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p.resolver, p.routes = static, static
	const c, s = "10.0.0.1:40000", "10.0.0.2:8080"
	ts, seq := uint64(time.Hour), uint32(1)
	for _, path := range []string{"/scan1", "/scan2", "/scan3", "/api/users/42/photo", "/checkout?step=2"} {
		p.handle(ev(ts, c, s, seq, "GET "+path+" HTTP/1.1\r\n\r\n"))
		p.handle(ev(ts+1000, s, c, seq, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		seq += 100
		ts += 2000
	}
	routes := gatherRoutes(t, prom)
	for _, want := range []string{"/api/users", "/checkout"} {
		if !slices.Contains(routes, want) {
			t.Errorf("known route %s not labelled: %v", want, routes)
		}
	}
}
