package observe

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// TestOnlyOwnScrapeIsDropped (issue 16 point 8): every pod's GET /metrics
// on port 9090 was dropped as if it were the observer's own scrape. Only
// scrapes of the observer's own addresses are left out now.
func TestOnlyOwnScrapeIsDropped(t *testing.T) {
	cfg := Defaults()
	cfg.JSONExchanges = true
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out) // own address 10.0.0.100, port 9090
	ts := uint64(time.Hour)
	scrape := func(server string, seq uint32) {
		p.handle(ev(ts, "10.0.0.1:40001", server, seq, "GET /metrics HTTP/1.1\r\n\r\n"))
		p.handle(ev(ts+1000, server, "10.0.0.1:40001", seq, "HTTP/1.1 200 OK\r\n\r\n"))
		ts += 2000
	}
	scrape("10.0.0.2:9090", 1)   // the web pod's own metrics: traffic
	scrape("10.0.0.100:9090", 2) // the observer: not recorded
	scrape("10.0.0.100:9091", 3) // another port on our address: traffic
	var routes []string
	for _, l := range lines(t, &out) {
		if l.Type == "exchange" {
			routes = append(routes, l.Service+" "+l.Route)
		}
	}
	if len(routes) != 2 || routes[0] != "web /metrics" || routes[1] != "10.0.0.100:9091 /metrics" {
		t.Fatalf("recorded %v, want the pod's scrape and the one on another port", routes)
	}
}

func TestOwnAddrsBoundListener(t *testing.T) {
	o := newOwnAddrs(mustAP("127.0.0.1:9090"), nil)
	if !o.is(mustAP("127.0.0.1:9090")) || o.is(mustAP("10.0.0.1:9090")) {
		t.Fatal("a listener bound to one address owns that address only")
	}
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
