package configstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/poll"
)

// tokens is an Authenticator that knows a fixed set of tokens.
type tokens map[string]Identity

func (t tokens) Authenticate(_ context.Context, token string) (Identity, error) {
	if id, ok := t[token]; ok {
		return id, nil
	}
	return Identity{}, ErrUnauthenticated
}

// sameNamespace lets a ServiceAccount read the Gateways of its namespace
// named like it.
func sameNamespace(id Identity, gateway string) bool {
	return gateway == id.Namespace+"/"+id.ServiceAccount
}

type testServer struct {
	srv  *Server
	ca   *CA
	addr string
	hs   *http.Server
	ln   net.Listener
}

func startServer(t *testing.T, srv *Server, addr string) *testServer {
	t.Helper()
	ca, err := NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return startServerWithCA(t, srv, ca, addr)
}

func startServerWithCA(t *testing.T, srv *Server, ca *CA, addr string) *testServer {
	t.Helper()
	return startHandler(t, srv, srv.Handler(), ca, addr)
}

// startHandler serves h (srv's handler, wrapped) with a certificate of ca.
func startHandler(t *testing.T, srv *Server, h http.Handler, ca *CA, addr string) *testServer {
	t.Helper()
	cert, err := ca.IssueServing([]string{"controller.test"}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	ts := &testServer{srv: srv, ca: ca, addr: ln.Addr().String(), hs: hs, ln: ln}
	t.Cleanup(func() { hs.Close() })
	return ts
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// applied records what a client applied.
type applied struct {
	mu   sync.Mutex
	cfgs []Config
	ch   chan Config
}

func newApplied() *applied { return &applied{ch: make(chan Config, 16)} }

func (a *applied) apply(c Config) Report {
	a.mu.Lock()
	a.cfgs = append(a.cfgs, c)
	a.mu.Unlock()
	a.ch <- c
	return Report{}
}

func (a *applied) next(t *testing.T) Config {
	t.Helper()
	select {
	case c := <-a.ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no config applied within 10 s")
		return Config{}
	}
}

func snapshot(port uint32, withCert bool) *ir.Snapshot {
	l := ir.Listener{Name: "ns/gw/" + string(rune('0'+port%10)), Gateway: "ns/gw", Port: port, Protocol: ir.ProtocolHTTP}
	if withCert {
		l.Protocol = ir.ProtocolHTTPS
		l.Certificates = []ir.Certificate{{Name: "ns/tls", CertPEM: []byte("CERT"), KeyPEM: []byte("KEY")}}
	}
	return &ir.Snapshot{Listeners: []ir.Listener{l}}
}

func client(t *testing.T, ts *testServer, token, gateway string, a *applied) (*Client, chan error) {
	t.Helper()
	pool, err := Pool(ts.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 64)
	c := &Client{
		Address: ts.addr, ServerName: "controller.test", RootCAs: pool,
		TokenFile: tokenFile(t, token), Gateway: gateway, Pod: "pod-a",
		Apply:     a.apply,
		OnError:   func(err error) { errs <- err },
		Heartbeat: 200 * time.Millisecond,
	}
	return c, errs
}

func run(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestStreamDeliversConfigsAndReports(t *testing.T) {
	srv := &Server{Auth: tokens{"tok": {Namespace: "ns", ServiceAccount: "gw", Pod: "pod-a"}}, Authorize: sameNamespace, Heartbeat: 100 * time.Millisecond}
	ts := startServer(t, srv, "127.0.0.1:0")
	first := NewConfig("ns/gw", 1, snapshot(80, true))
	srv.Publish(map[string]Config{"ns/gw": first, "other/gw": NewConfig("other/gw", 1, snapshot(81, false))})

	a := newApplied()
	c, _ := client(t, ts, "tok", "ns/gw", a)
	run(t, c)

	got := a.next(t)
	if got.Version != first.Version || got.Gateway != "ns/gw" {
		t.Fatalf("applied %s of %s, want %s of ns/gw", got.Version, got.Gateway, first.Version)
	}
	snap := got.Resolve()
	if cert := snap.Listeners[0].Certificates[0]; string(cert.CertPEM) != "CERT" || string(cert.KeyPEM) != "KEY" {
		t.Errorf("key material not carried: %q %q", cert.CertPEM, cert.KeyPEM)
	}
	poll.Require(t, 10*time.Second, "the report", func() bool {
		pods := srv.Pods("ns/gw")
		return len(pods) == 1 && pods[0].Connected && pods[0].Report.Version == first.Version && pods[0].Report.Generation == 1
	})

	// The same content again sends nothing; a change is delivered.
	srv.Publish(map[string]Config{"ns/gw": NewConfig("ns/gw", 1, snapshot(80, true))})
	second := NewConfig("ns/gw", 2, snapshot(8080, false))
	srv.Publish(map[string]Config{"ns/gw": second})
	if got := a.next(t); got.Version != second.Version {
		t.Fatalf("second config: got %s, want %s (an identical publish must not be re-sent)", got.Version, second.Version)
	}
	poll.Require(t, 10*time.Second, "the second report", func() bool {
		pods := srv.Pods("ns/gw")
		return len(pods) == 1 && pods[0].Report.Version == second.Version
	})
}

// reportsVia serves a Server for ns/gw whose reports go through report
// first (true: pass it on), publishes cfg and runs a client that applies
// into a. It returns the Server, the count of streams opened and the
// client's errors.
func reportsVia(t *testing.T, cfg Config, a *applied, report func(w http.ResponseWriter, r *http.Request) bool) (*Server, *atomic.Int32, chan error) {
	t.Helper()
	srv := &Server{Auth: tokens{"tok": {Namespace: "ns", ServiceAccount: "gw", Pod: "pod-a"}}, Authorize: sameNamespace, Heartbeat: 100 * time.Millisecond}
	h := srv.Handler()
	var streams atomic.Int32
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case StreamPath:
			streams.Add(1)
		case ReportPath:
			if !report(w, r) {
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	ca, err := NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts := startHandler(t, srv, wrapped, ca, "127.0.0.1:0")
	srv.Publish(map[string]Config{"ns/gw": cfg})
	c, errs := client(t, ts, "tok", "ns/gw", a)
	run(t, c)
	return srv, &streams, errs
}

// TestSlowReportDoesNotHoldBackConfigs: a controller that does not answer
// a report still gets its next Config applied at once, on the same stream
// (a data plane once served its first Config, without endpoints, for as
// long as its report hung).
func TestSlowReportDoesNotHoldBackConfigs(t *testing.T) {
	release := make(chan struct{})
	first := NewConfig("ns/gw", 1, snapshot(80, false))
	a := newApplied()
	srv, streams, _ := reportsVia(t, first, a, func(_ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
			return false
		}
		return true
	})
	if got := a.next(t); got.Version != first.Version {
		t.Fatalf("applied %s, want %s", got.Version, first.Version)
	}
	second := NewConfig("ns/gw", 2, snapshot(81, false))
	srv.Publish(map[string]Config{"ns/gw": second})
	if got := a.next(t); got.Version != second.Version {
		t.Fatalf("applied %s, want %s", got.Version, second.Version)
	}
	if n := streams.Load(); n != 1 {
		t.Errorf("%d streams opened, want the first one to carry both Configs", n)
	}
	close(release)
	poll.Require(t, 10*time.Second, "the second config's report", func() bool {
		pods := srv.Pods("ns/gw")
		return len(pods) == 1 && pods[0].Report.Version == second.Version
	})
}

// TestFailedReportIsRetried: a report the controller refuses is posted
// again on the same stream, and the failure is logged.
func TestFailedReportIsRetried(t *testing.T) {
	var refused atomic.Int32
	cfg := NewConfig("ns/gw", 1, snapshot(80, false))
	a := newApplied()
	srv, streams, errs := reportsVia(t, cfg, a, func(w http.ResponseWriter, _ *http.Request) bool {
		if refused.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return false
		}
		return true
	})
	a.next(t)
	poll.Require(t, 10*time.Second, "the report, third time", func() bool {
		pods := srv.Pods("ns/gw")
		return len(pods) == 1 && pods[0].Report.Version == cfg.Version
	})
	if n := streams.Load(); n != 1 {
		t.Errorf("%d streams opened, want the one stream kept through the refused reports", n)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), cfg.Version) {
			t.Errorf("logged %v, want the refusal and the version", err)
		}
	default:
		t.Error("a refused report was not logged")
	}
}

func TestStreamRefusesOthers(t *testing.T) {
	srv := &Server{Auth: tokens{"tok": {Namespace: "ns", ServiceAccount: "gw"}}, Authorize: sameNamespace}
	ts := startServer(t, srv, "127.0.0.1:0")
	srv.Publish(map[string]Config{"other/gw": NewConfig("other/gw", 1, snapshot(80, true))})

	for _, tc := range []struct{ token, gateway, want string }{
		{"bad", "ns/gw", "401"},
		{"tok", "other/gw", "403"},
	} {
		a := newApplied()
		c, errs := client(t, ts, tc.token, tc.gateway, a)
		run(t, c)
		select {
		case err := <-errs:
			if !containsStatus(err, tc.want) {
				t.Errorf("token %q gateway %q: error %v, want status %s", tc.token, tc.gateway, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("token %q gateway %q: no error", tc.token, tc.gateway)
		}
		a.mu.Lock()
		if len(a.cfgs) != 0 {
			t.Errorf("token %q gateway %q: a config was delivered", tc.token, tc.gateway)
		}
		a.mu.Unlock()
	}
}

func containsStatus(err error, code string) bool {
	return err != nil && strings.Contains(err.Error(), code)
}

// TestStreamSurvivesControllerRestart: the data plane keeps what it applied
// while the controller is away (Apply is not called with anything else) and
// picks up the new controller's config when it is back.
func TestStreamSurvivesControllerRestart(t *testing.T) {
	auth := tokens{"tok": {Namespace: "ns", ServiceAccount: "gw"}}
	srv := &Server{Auth: auth, Authorize: sameNamespace, Heartbeat: 100 * time.Millisecond}
	ts := startServer(t, srv, "127.0.0.1:0")
	cfg := NewConfig("ns/gw", 1, snapshot(80, false))
	srv.Publish(map[string]Config{"ns/gw": cfg})
	a := newApplied()
	c, _ := client(t, ts, "tok", "ns/gw", a)
	run(t, c)
	a.next(t)

	ts.hs.Close()
	time.Sleep(300 * time.Millisecond)
	select {
	case got := <-a.ch:
		t.Fatalf("applied %s while the controller was away", got.Version)
	default:
	}

	srv2 := &Server{Auth: auth, Authorize: sameNamespace, Heartbeat: 100 * time.Millisecond}
	next := NewConfig("ns/gw", 2, snapshot(81, false))
	srv2.Publish(map[string]Config{"ns/gw": next})
	startServerWithCA(t, srv2, ts.ca, ts.addr)
	if got := a.next(t); got.Version != next.Version {
		t.Fatalf("after the restart: applied %s, want %s", got.Version, next.Version)
	}
}

// TestSilentStreamIsDropped: a controller that stops writing (a partition)
// is noticed by the missing heartbeats and dialled again.
func TestSilentStreamIsDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServing([]string{"controller.test"}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	opened := 0
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			opened++
			mu.Unlock()
			w.Header().Set("Content-Type", ContentType)
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			<-r.Context().Done() // never a heartbeat
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { hs.Close() })

	pool, _ := Pool(ca.CertPEM)
	errs := make(chan error, 16)
	c := &Client{Address: ln.Addr().String(), ServerName: "controller.test", RootCAs: pool,
		TokenFile: tokenFile(t, "tok"), Gateway: "ns/gw", Pod: "p", Heartbeat: 50 * time.Millisecond,
		Apply: func(Config) Report { return Report{} }, OnError: func(err error) { errs <- err }}
	run(t, c)
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "silent") {
			t.Errorf("error %v, want the silence to be named", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent stream was never dropped")
	}
	poll.Require(t, 10*time.Second, "a second stream", func() bool { mu.Lock(); defer mu.Unlock(); return opened >= 2 })
}

func TestConfigVersion(t *testing.T) {
	a := NewConfig("ns/gw", 1, snapshot(80, true))
	b := NewConfig("ns/gw", 1, snapshot(80, true))
	if a.Version != b.Version {
		t.Errorf("same content, versions %s and %s", a.Version, b.Version)
	}
	rotated := snapshot(80, true)
	rotated.Listeners[0].Certificates[0].KeyPEM = []byte("NEWKEY")
	if c := NewConfig("ns/gw", 1, rotated); c.Version == a.Version {
		t.Error("a rotated key did not change the version")
	}
	if c := NewConfig("ns/gw", 2, snapshot(80, true)); c.Version == a.Version {
		t.Error("a new generation did not change the version")
	}
}

// TestStreamEndsWhenTheGatewayGoes: a Publish without the Gateway ends its
// streams, and the pod is no longer counted.
func TestStreamEndsWhenTheGatewayGoes(t *testing.T) {
	srv := &Server{Auth: tokens{"tok": {Namespace: "ns", ServiceAccount: "gw", Pod: "pod-a"}}, Authorize: sameNamespace, Heartbeat: 100 * time.Millisecond}
	ts := startServer(t, srv, "127.0.0.1:0")
	srv.Publish(map[string]Config{"ns/gw": NewConfig("ns/gw", 1, snapshot(80, false))})
	a := newApplied()
	c, errs := client(t, ts, "tok", "ns/gw", a)
	run(t, c)
	a.next(t)
	srv.Publish(map[string]Config{})
	select {
	case <-errs:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of a removed Gateway did not end")
	}
}

// TestConfigFrameIsTheConfig: the frame NewConfig encodes once decodes to
// the Config itself, Version included (the version is written into the
// frame after hashing it), and carries no key material outside Keys.
func TestConfigFrameIsTheConfig(t *testing.T) {
	c := NewConfig("ns/gw", 7, snapshot(80, true))
	m, err := readFrame(bytes.NewReader(c.Frame()), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config == nil || m.Config.Version != c.Version || len(c.Version) != versionLen {
		t.Fatalf("frame carries version %+v, want %q", m.Config, c.Version)
	}
	// Key material travels in Keys only; Resolve puts it back.
	if got, want := m.Config.Resolve(), c.Resolve(); !reflect.DeepEqual(got, want) || m.Config.Gateway != c.Gateway || m.Config.Generation != c.Generation {
		t.Errorf("frame decodes to\n%+v\nwant\n%+v", got, want)
	}
	if cert := m.Config.Snapshot.Listeners[0].Certificates[0]; cert.KeyPEM != nil || cert.CertPEM != nil {
		t.Errorf("the snapshot carries key material: %+v", cert)
	}
	if n := bytes.Count(c.Frame(), []byte("KEY")); n != 1 {
		t.Errorf("the key is %d times in the frame, want once (in Keys)", n)
	}
}

// TestReadFrameBounds: a frame longer than the limit is refused before it
// is read, a cut one and garbage are errors, never a partial Config.
func TestReadFrameBounds(t *testing.T) {
	frame := NewConfig("ns/gw", 1, snapshot(80, false)).Frame()
	if _, err := readFrame(bytes.NewReader(frame), len(frame)-frameHeader-1); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("over the limit: err %v, want exceeds", err)
	}
	if _, err := readFrame(bytes.NewReader(frame[:len(frame)-3]), 1<<20); err == nil {
		t.Error("a cut frame decoded")
	}
	bad := append([]byte{0, 0, 0, 3}, 0xff, 0xff, 0xff)
	if _, err := readFrame(bytes.NewReader(bad), 1<<20); err == nil {
		t.Error("garbage decoded")
	}
}

// FuzzReadFrame: whatever a stream holds, readFrame returns a message or an
// error, never panics, and never allocates past its limit.
func FuzzReadFrame(f *testing.F) {
	f.Add(NewConfig("ns/gw", 1, snapshot(80, true)).Frame())
	f.Add(encodeFrame(message{Heartbeat: true}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readFrame(bytes.NewReader(b), 1<<16)
		if err == nil && m.Config != nil {
			m.Config.Resolve()
		}
	})
}
