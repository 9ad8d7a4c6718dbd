package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/poll"
)

// fixedPort reserves a free loopback port number for a listener that must
// keep its address across snapshots.
func fixedPort(t *testing.T) uint32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	a, b := newEchoBackend(t, "a"), newEchoBackend(t, "b")
	port := fixedPort(t)
	snap := func(gen int) *ir.Snapshot {
		l := httpListener("l", catchAll(
			prefixRoute(fmt.Sprintf("gen-%d", gen), "/", a.backend(uint32(1+gen%3)), b.backend(uint32(1+gen%2))),
		))
		l.Port = port
		return &ir.Snapshot{Listeners: []ir.Listener{l}}
	}
	p := startProxy(t, snap(0), Options{})
	url := p.url(t, "l") + "/load"

	const workers, perWorker, swaps = 8, 250, 50
	var failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newClient()
			defer cl.CloseIdleConnections()
			for i := 0; i < perWorker; i++ {
				resp, err := cl.Get(url)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for gen := 1; gen <= swaps; gen++ {
		if err := p.Apply(snap(gen)); err != nil {
			t.Fatalf("Apply gen %d: %v", gen, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during %d reloads; first: %v", n, workers*perWorker, swaps, firstErr.Load())
	}
	if got := p.Active().Listeners[0].VirtualHosts[0].Routes[0].Name; got != fmt.Sprintf("gen-%d", swaps) {
		t.Errorf("Active serves %q after the last Apply", got)
	}
}

func TestIdleKeepAliveSurvivesReload(t *testing.T) {
	a, b := newEchoBackend(t, "a"), newEchoBackend(t, "b")
	port := fixedPort(t)
	snap := func(be *echoBackend) *ir.Snapshot {
		l := httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))
		l.Port = port
		return &ir.Snapshot{Listeners: []ir.Listener{l}}
	}
	p := startProxy(t, snap(a), Options{})
	cl := newClient()
	get := func() (string, bool) {
		var reused bool
		req := mustReq(t, "GET", p.url(t, "l")+"/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		_, e, _ := do(t, cl, req)
		return e.Backend, reused
	}
	if be, _ := get(); be != "a" {
		t.Fatalf("before reload: backend %q", be)
	}
	if err := p.Apply(snap(b)); err != nil {
		t.Fatal(err)
	}
	be, reused := get()
	if !reused {
		t.Error("the idle keep-alive connection was closed by the reload")
	}
	if be != "b" {
		t.Errorf("after reload the kept connection reached %q, want the new config's b", be)
	}
}

func TestListenersAddedRemovedAndBindFailure(t *testing.T) {
	be := newEchoBackend(t, "a")
	one := httpListener("one", catchAll(prefixRoute("r1", "/", be.backend(1))))
	two := httpListener("two", catchAll(prefixRoute("r2", "/", be.backend(1))))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{one}}, Options{})
	oneURL := p.url(t, "one")
	if err := p.Apply(&ir.Snapshot{Listeners: []ir.Listener{one, two}}); err != nil {
		t.Fatal(err)
	}
	if p.url(t, "one") != oneURL {
		t.Error("adding a listener reopened an unchanged one")
	}
	if resp, _, _ := do(t, newClient(), mustReq(t, "GET", p.url(t, "two")+"/", nil)); resp.StatusCode != 200 {
		t.Errorf("new listener answered %d", resp.StatusCode)
	}

	// A port someone else holds: the error names the listener, the others
	// keep serving.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := httpListener("busy", catchAll(prefixRoute("r3", "/", be.backend(1))))
	busy.Port = uint32(taken.Addr().(*net.TCPAddr).Port)
	err = p.Apply(&ir.Snapshot{Listeners: []ir.Listener{one, busy}})
	if err == nil || !contains(err.Error(), `listener "busy"`, strconv.Itoa(int(busy.Port))) {
		t.Fatalf("Apply with a taken port: %v", err)
	}
	if p.Addr("busy") != nil {
		t.Error("a listener that failed to bind reports an address")
	}
	if resp, _, _ := do(t, newClient(), mustReq(t, "GET", oneURL+"/", nil)); resp.StatusCode != 200 {
		t.Errorf("listener one answered %d after a sibling's bind failure", resp.StatusCode)
	}
	if got := len(p.Active().Listeners); got != 1 {
		t.Errorf("Active lists %d listeners, want only the one served", got)
	}
	// Listener two was removed: its socket is closed.
	if p.Addr("two") != nil {
		t.Error("removed listener still has an address")
	}
}

func TestRemovedListenerCloses(t *testing.T) {
	be := newEchoBackend(t, "a")
	one := httpListener("one", catchAll(prefixRoute("r1", "/", be.backend(1))))
	two := httpListener("two", catchAll(prefixRoute("r2", "/", be.backend(1))))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{one, two}}, Options{})
	twoAddr := p.Addr("two").String()
	if err := p.Apply(&ir.Snapshot{Listeners: []ir.Listener{one}}); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", twoAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("removed listener %s still accepts connections", twoAddr)
	}
}

func TestCompileErrorKeepsOldConfig(t *testing.T) {
	be := newEchoBackend(t, "a")
	good := httpListener("l", catchAll(prefixRoute("good", "/", be.backend(1))))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{good}}, Options{})
	url := p.url(t, "l")
	bad := httpListener("l", catchAll(ir.Route{Name: "HTTPRoute/default/broken/rule/0", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathRegex, Value: "(["}}}))
	extra := httpListener("extra", catchAll(prefixRoute("x", "/", be.backend(1))))
	err := p.Apply(&ir.Snapshot{Listeners: []ir.Listener{extra, bad}})
	if err == nil || !contains(err.Error(), `listener "l"`, `route "HTTPRoute/default/broken/rule/0"`) {
		t.Fatalf("Apply with a bad regex: %v", err)
	}
	if p.Addr("extra") != nil {
		t.Error("a rejected snapshot opened a socket")
	}
	if resp, _, _ := do(t, newClient(), mustReq(t, "GET", url+"/", nil)); resp.StatusCode != 200 {
		t.Errorf("old config not served after a rejected Apply: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		snap *ir.Snapshot
		want string
	}{
		{&ir.Snapshot{Listeners: []ir.Listener{good, good}}, "name used twice"},
		{&ir.Snapshot{Listeners: []ir.Listener{{Name: "sctp", Protocol: "SCTP"}}}, `listener "sctp": protocol "SCTP"`},
		{&ir.Snapshot{Listeners: []ir.Listener{{Protocol: ir.ProtocolHTTP}}}, "empty name"},
	} {
		if err := p.Apply(tc.snap); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("Apply: %v, want an error with %q", err, tc.want)
		}
	}
}

func TestPortOffsetAndDefaultAddress(t *testing.T) {
	be := newEchoBackend(t, "a")
	base := fixedPort(t)
	l := httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))
	l.Address = "" // the default address applies
	l.Port = base - 100
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{DefaultAddress: "127.0.0.1", PortOffset: 100})
	if got, want := p.Addr("l").String(), "127.0.0.1:"+strconv.Itoa(int(base)); got != want {
		t.Fatalf("bound %s, want %s", got, want)
	}
	if resp, _, _ := do(t, newClient(), mustReq(t, "GET", "http://127.0.0.1:"+strconv.Itoa(int(base))+"/", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestEndpointStateOutlivesApply(t *testing.T) {
	be := newEchoBackend(t, "a")
	l := httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	addr := be.srv.Listener.Addr().String()
	before := p.registry.Endpoint(addr)
	l2 := l
	l2.VirtualHosts = []ir.VirtualHost{catchAll(prefixRoute("renamed", "/", be.backend(5)))}
	if err := p.Apply(&ir.Snapshot{Listeners: []ir.Listener{l2}}); err != nil {
		t.Fatal(err)
	}
	if p.registry.Endpoint(addr) != before {
		t.Error("endpoint state was recreated by a reload")
	}
	if err := p.Apply(&ir.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	if !poll.Until(10*time.Second, func() bool { return p.registry.Endpoint(addr) != before }) {
		t.Error("endpoint no config uses was not pruned")
	}
}

// TestTidyForgetsRemovedRoutes: the series of a removed route and the state
// of an endpoint no route names go once changes pause (tidy.go), also while
// changes keep coming (tidyMaxDelay), and never while a route still has them.
func TestTidyForgetsRemovedRoutes(t *testing.T) {
	a, b := newEchoBackend(t, "a"), newEchoBackend(t, "b")
	both := httpListener("l", catchAll(prefixRoute("ra", "/a", a.backend(1)), prefixRoute("rb", "/b", b.backend(1))))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{both}}, Options{})
	c := newClient()
	for _, path := range []string{"/a", "/b"} {
		if resp, _, _ := do(t, c, mustReq(t, "GET", p.url(t, "l")+path, nil)); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
	series := func(route string) bool {
		p.resolved.mu.Lock()
		defer p.resolved.mu.Unlock()
		_, ok := p.resolved.routes[routeKey{"default/gw", route}]
		return ok
	}
	stateB := p.registry.Endpoint(b.srv.Listener.Addr().String())
	onlyA := httpListener("l", catchAll(prefixRoute("ra", "/a", a.backend(1))))
	// Changes every 20 ms, for longer than tidyMaxDelay: tidy still runs.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; series("rb") && time.Now().Before(deadline); i++ {
		l := onlyA
		l.VirtualHosts = []ir.VirtualHost{catchAll(prefixRoute("ra", "/a", a.backend(uint32(1+i%2))))}
		if err := p.Apply(&ir.Snapshot{Listeners: []ir.Listener{l}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if series("rb") {
		t.Fatal("the removed route's series were kept through 10 s of changes")
	}
	if !series("ra") {
		t.Error("the series of a route still served were dropped")
	}
	if !poll.Until(10*time.Second, func() bool { return p.registry.Endpoint(b.srv.Listener.Addr().String()) != stateB }) {
		t.Error("the state of an endpoint no route names was kept")
	}
}
