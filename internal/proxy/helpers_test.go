package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/ir"
)

// echoed is what the echo backend saw.
type echoed struct {
	Backend string              `json:"backend"`
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Proto   string              `json:"proto"`
	Header  map[string][]string `json:"header"`
	Body    string              `json:"body"`
}

// echoBackend is a real HTTP server on loopback that answers with what it
// received. name tells backends apart.
type echoBackend struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	seen []echoed
	hits chan echoed
}

func newEchoBackend(t testing.TB, name string) *echoBackend {
	t.Helper()
	e := &echoBackend{name: name, hits: make(chan echoed, 4096)}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *echoBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	got := echoed{Backend: e.name, Method: r.Method, URI: r.RequestURI, Host: r.Host, Proto: r.Proto, Header: r.Header, Body: string(body)}
	e.mu.Lock()
	e.seen = append(e.seen, got)
	e.mu.Unlock()
	select {
	case e.hits <- got:
	default:
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Backend", e.name)
	json.NewEncoder(w).Encode(got)
}

// endpoint returns the IR endpoint of a test server.
func endpointOf(t testing.TB, rawAddr string) ir.Endpoint {
	t.Helper()
	host, port, err := net.SplitHostPort(rawAddr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return ir.Endpoint{Address: host, Port: uint32(p)}
}

func (e *echoBackend) backend(weight uint32) ir.Backend {
	host, port, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return ir.Backend{Name: "default/" + e.name + ":80", Weight: weight, Endpoints: []ir.Endpoint{{Address: host, Port: uint32(p)}}}
}

// httpListener is a plain-HTTP listener on an ephemeral loopback port.
func httpListener(name string, vhosts ...ir.VirtualHost) ir.Listener {
	return ir.Listener{Name: name, Gateway: "default/gw", Address: "127.0.0.1", Port: 0, Protocol: ir.ProtocolHTTP, VirtualHosts: vhosts}
}

func catchAll(routes ...ir.Route) ir.VirtualHost {
	return ir.VirtualHost{Name: "default/gw/http", Routes: routes}
}

func prefixRoute(name, prefix string, backends ...ir.Backend) ir.Route {
	return ir.Route{Name: name, Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: prefix}}, Backends: backends}
}

// testProxy is a running Server with its metrics registry.
type testProxy struct {
	*Server
	reg *prometheus.Registry
}

func startProxy(t testing.TB, snap *ir.Snapshot, opts Options) *testProxy {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	if opts.DefaultAddress == "" {
		opts.DefaultAddress = "127.0.0.1"
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 2 * time.Second
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if snap != nil {
		if err := s.Apply(snap); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return &testProxy{Server: s, reg: reg}
}

// url returns "http://addr" of a listener.
func (p *testProxy) url(t testing.TB, listener string) string {
	t.Helper()
	a := p.Addr(listener)
	if a == nil {
		t.Fatalf("listener %q not served", listener)
	}
	return "http://" + a.String()
}

// newClient returns an HTTP/1.1 client with its own pool and no redirects
// followed.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// get performs a request and returns status, headers and the decoded echo
// (zero when the body is not an echo).
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, echoed, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	var e echoed
	if json.Unmarshal(body, &e) != nil {
		e = echoed{}
	}
	return resp, e, string(body)
}

func mustReq(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// syncBuffer is a bytes.Buffer safe for the proxy's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// gathered reads one series of the registry: the value of the metric whose
// labels include the given pairs, -1 when there is none.
func gathered(t testing.TB, reg *prometheus.Registry, metric string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// counter returns the value of the counter series with these label values
// (name, value pairs), 0 when it does not exist.
func (p *testProxy) counter(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	return max(gathered(t, p.reg, name, labels...), 0)
}

// histogramCount sums the sample counts of the histogram series that have
// these label values (name, value pairs; other labels may be anything).
func (p *testProxy) histogramCount(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// flushAccessLog waits until every access log line of a request already
// recorded is written: the log is written by its own goroutine.
func (p *testProxy) flushAccessLog() { p.accessLog.flush() }

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
