package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/poll"
)

// backend answers "hello" on loopback.
func backend(t *testing.T) ir.Backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return ir.Backend{Name: "default/hello:80", Weight: 1, Endpoints: []ir.Endpoint{{Address: host, Port: uint32(p)}}}
}

func listener(name string, port int, b ir.Backend) ir.Listener {
	return ir.Listener{
		Name: name, Gateway: "default/gw", Address: "127.0.0.1", Port: uint32(port), Protocol: ir.ProtocolHTTP,
		VirtualHosts: []ir.VirtualHost{{Name: "default/gw/http", Routes: []ir.Route{{
			Name: "r", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}}, Backends: []ir.Backend{b},
		}}}},
	}
}

func snapshot(ls ...ir.Listener) *ir.Snapshot {
	return &ir.Snapshot{Listeners: ls}
}

func newGateway(t *testing.T, opts Options) (*Gateway, *syncLog) {
	t.Helper()
	opts.Address, opts.AdminAddr = "127.0.0.1", "127.0.0.1:0"
	logs := &syncLog{}
	g, err := New(opts, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.adm.Close() }) // for tests that do not Run it
	return g, logs
}

func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestDrain: when Run's context ends, /readyz answers 503 at once on both
// admin servers while /healthz stays 200 and the listener keeps serving
// (an idle keep-alive connection is closed, a new connection is served).
// The drain period is long; a component failing ends it, as it would end
// a real one, and then new connections are refused.
func TestDrain(t *testing.T) {
	g, _ := newGateway(t, Options{MetricsAddr: "127.0.0.1:0", DrainPeriod: time.Hour, ShutdownTimeout: 5 * time.Second})
	if err := g.Apply(snapshot(listener("l", 0, backend(t))), NoStatus{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endDrain := make(chan struct{})
	errEnd := errors.New("end of the test's drain")
	done := make(chan error, 1)
	go func() {
		done <- g.Run(ctx, func(ctx context.Context) error {
			select {
			case <-endDrain:
				return errEnd
			case <-ctx.Done():
				return nil
			}
		})
	}()
	addr := g.px.Addr("l").String()
	admins := []string{g.adm.Addr().String(), g.probes.Addr().String()}
	for _, a := range admins {
		if code, _, err := httpGet("http://" + a + "/readyz"); err != nil || code != 200 {
			t.Fatalf("/readyz on %s before the drain: %d %v", a, code, err)
		}
	}
	ka, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ka.Close()
	kaR := bufio.NewReader(ka)
	fmt.Fprintf(ka, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(kaR, nil)
	if err != nil {
		t.Fatalf("keep-alive request: %v", err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("Connection: close before the drain")
	}

	cancel()
	poll.Require(t, 2*time.Second, "readyz 503 on both admin servers", func() bool {
		for _, a := range admins {
			if code, body, _ := httpGet("http://" + a + "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
				return false
			}
		}
		return true
	})
	for _, a := range admins {
		if code, _, err := httpGet("http://" + a + "/healthz"); err != nil || code != 200 {
			t.Errorf("/healthz on %s during the drain: %d %v", a, code, err)
		}
	}
	ka.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := kaR.ReadByte(); err == nil {
		t.Error("idle keep-alive connection got bytes instead of a close")
	}
	for i := range 3 {
		if code, body, err := httpGet("http://" + addr + "/"); err != nil || code != 200 || body != "hello" {
			t.Errorf("new connection %d during the drain: %d %q %v", i, code, body, err)
		}
	}
	close(endDrain)
	select {
	case err := <-done:
		if !errors.Is(err, errEnd) {
			t.Errorf("Run = %v, want the component's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the drain ended")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("listener accepts after Run returned")
	}
}

// TestDrainPeriodEnds: the drain period ends on its own, Run returns nil,
// and the start and the end of the drain are logged, the end with the
// number of connections the shutdown timeout cut.
func TestDrainPeriodEnds(t *testing.T) {
	g, logs := newGateway(t, Options{DrainPeriod: 100 * time.Millisecond})
	if err := g.Apply(snapshot(listener("l", 0, backend(t))), NoStatus{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	addr := g.px.Addr("l").String()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the drain period")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("listener accepts after Run returned")
	}
	for _, want := range []string{`"msg":"draining`, `"drain_period":"100ms"`, `"msg":"shutdown complete"`, `"connections_left":0`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestBindFailures: a listener whose port is taken leaves the rest of the
// configuration applied, is listed by BindFailures and keeps /readyz at
// 503 with the reason; applying the same configuration once the port is
// free binds it and clears both.
func TestBindFailures(t *testing.T) {
	g, _ := newGateway(t, Options{})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := taken.Addr().(*net.TCPAddr).Port
	b := backend(t)
	r := snapshot(listener("busy", port, b), listener("free", 0, b))
	err = g.Apply(r, NoStatus{})
	if err == nil || strings.Contains(err.Error(), "not applied") {
		t.Fatalf("Apply with a taken port: %v; want an error that says the configuration is applied", err)
	}
	if f := g.BindFailures(); len(f) != 1 || f["busy"] == nil {
		t.Errorf("BindFailures = %v, want just busy", f)
	}
	if err := g.Ready(); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("Ready = %v, want not ready naming the listener", err)
	}
	rec := httptest.NewRecorder()
	g.adm.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "busy") {
		t.Errorf("/readyz: %d %q", rec.Code, rec.Body.String())
	}
	if g.px.Addr("free") == nil {
		t.Error("the free listener is not served")
	}
	taken.Close()
	if err := g.Apply(r, NoStatus{}); err != nil {
		t.Fatalf("Apply once the port is free: %v", err)
	}
	if f := g.BindFailures(); len(f) != 0 {
		t.Errorf("BindFailures after the bind = %v", f)
	}
	if err := g.Ready(); err != nil {
		t.Errorf("Ready after the bind: %v", err)
	}
	// A configuration the proxy refuses is still "not applied".
	bad := listener("bad", 0, b)
	bad.VirtualHosts[0].Routes[0].Match.Path = ir.PathMatch{Type: ir.PathRegex, Value: "(["}
	if err := g.Apply(snapshot(bad), NoStatus{}); err == nil || !strings.Contains(err.Error(), "not applied") {
		t.Errorf("Apply of an invalid configuration: %v", err)
	}
}

// TestComponentFailureEndsRun: a provider failing ends Run at once, without
// the drain period, with its error.
func TestComponentFailureEndsRun(t *testing.T) {
	g, _ := newGateway(t, Options{DrainPeriod: time.Hour})
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background(), func(context.Context) error { return boom }) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("Run = %v, want boom", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end after a component failed")
	}
}

// syncLog collects log output written from several goroutines.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestBindRetried: while Run serves, a listener that could not be bound is
// bound once its port is free, without an Apply, and BindFailuresChanged
// says so.
func TestBindRetried(t *testing.T) {
	changed := make(chan map[string]error, 4)
	g, _ := newGateway(t, Options{BindFailuresChanged: func(f map[string]error) { changed <- f }})
	g.bindRetry = 20 * time.Millisecond
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := taken.Addr().(*net.TCPAddr).Port
	if err := g.Apply(snapshot(listener("busy", port, backend(t))), NoStatus{}); err == nil {
		t.Fatal("Apply with a taken port: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	taken.Close()
	select {
	case f := <-changed:
		if len(f) != 0 {
			t.Errorf("BindFailuresChanged(%v), want none left", f)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the listener was not bound after its port was freed")
	}
	if err := g.Ready(); err != nil {
		t.Errorf("Ready after the retry: %v", err)
	}
	if code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || code != 200 || body != "hello" {
		t.Errorf("the listener bound on retry: %d %q %v", code, body, err)
	}
}
