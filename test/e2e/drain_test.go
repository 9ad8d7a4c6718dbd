package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// loadResult is what one load worker saw.
type loadResult struct {
	ok, failed int
	errs       []string // the first few failures
}

// runLoad sends GETs (POSTs with post, which clients do not retry on a
// reset connection) with c until stop is closed (at most 10s), counting
// answers that are not a 200 and transport errors as failures.
func runLoad(c *http.Client, url string, post bool, stop <-chan struct{}) loadResult {
	var r loadResult
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-stop:
			return r
		default:
		}
		var resp *http.Response
		var err error
		if post {
			resp, err = c.Post(fmt.Sprintf("%s?n=%d", url, i), "text/plain", strings.NewReader("payload"))
		} else {
			resp, err = c.Get(fmt.Sprintf("%s?n=%d", url, i))
		}
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			r.failed++
			if len(r.errs) < 5 {
				r.errs = append(r.errs, err.Error())
			}
			continue
		}
		r.ok++
	}
	return r
}

// TestDrainOnSIGTERM is a rolling restart's view of one gateway: under a
// steady load of keep-alive (GET and POST), new-connection and HTTP/2
// clients, SIGTERM
// turns /readyz to 503 at once while every request keeps succeeding (the
// load goes on for a second after /readyz said 503, as a load balancer
// takes time to notice); a request in flight at SIGTERM completes; the
// process exits 0 within DrainPeriod + ShutdownTimeout and logs the drain.
func TestDrainOnSIGTERM(t *testing.T) {
	const drainPeriod, shutdownTimeout = 5 * time.Second, 10 * time.Second
	be := startBackend(t, "drain")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"all.yaml": httpGateway(port) + servicesYAML(be) + routeYAML("drain", nil, catchAll("drain")),
	}, "-drain-period="+drainPeriod.String(), "-shutdown-timeout="+shutdownTimeout.String(), "-access-log=false")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	clients := map[string]*http.Client{
		"keep-alive GET":   newClient(),
		"keep-alive POST":  newClient(),
		"new connection 1": {Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second},
		"new connection 2": {Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second},
		"h2c":              {Transport: h2c, Timeout: 10 * time.Second},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]loadResult{}
	for name, c := range clients {
		wg.Go(func() {
			r := runLoad(c, base+"/load", strings.HasSuffix(name, "POST"), stop)
			mu.Lock()
			results[name] = r
			mu.Unlock()
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// A slow request, in flight when SIGTERM arrives.
	type slowResult struct {
		status int
		err    error
	}
	slow := make(chan slowResult, 1)
	go func() {
		resp, err := newClient().Get(base + "/slow?delay=1500ms")
		if err != nil {
			slow <- slowResult{err: err}
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slow <- slowResult{resp.StatusCode, err}
	}()
	poll.Require(t, 10*time.Second, "the slow request reached the backend", func() bool {
		for _, p := range be.seen() {
			if strings.HasPrefix(p, "GET /slow") {
				return true
			}
		}
		return false
	})

	g.once.Do(func() {}) // this test stops the process itself
	sent := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	readyz := func() int {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + g.admin + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	poll.Require(t, 5*time.Second, "/readyz answers 503 after SIGTERM", func() bool { return readyz() == http.StatusServiceUnavailable })
	time.Sleep(time.Second) // a load balancer's delay in noticing
	close(stop)
	wg.Wait()

	if r := <-slow; r.err != nil || r.status != http.StatusOK {
		t.Errorf("request in flight at SIGTERM: status %d, err %v", r.status, r.err)
	}
	select {
	case <-g.exited:
	case <-time.After(drainPeriod + shutdownTimeout + 5*time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		t.Fatalf("rauta did not exit within DrainPeriod + ShutdownTimeout (+5s) of SIGTERM\nstderr:\n%s", g.stderr.String())
	}
	took := time.Since(sent)
	if g.err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", g.err)
	}
	total, failed := 0, 0
	for name, r := range results {
		total, failed = total+r.ok+r.failed, failed+r.failed
		if r.failed > 0 {
			t.Errorf("%s: %d of %d requests failed during the drain: %v", name, r.failed, r.ok+r.failed, r.errs)
		}
		if r.ok == 0 {
			t.Errorf("%s: no request succeeded", name)
		}
	}
	stderr := g.stderr.String()
	for _, want := range []string{`"msg":"draining`, `"msg":"shutdown complete"`, `"connections_left":0`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %s", want)
		}
	}
	t.Logf("%d requests from %d clients, %d failed; exit %s after SIGTERM", total, len(clients), failed, took.Round(10*time.Millisecond))
	if t.Failed() {
		t.Logf("rauta stderr:\n%s", stderr)
	}
}

// TestSecondSignalExitsAtOnce: a second SIGTERM during a long drain ends
// the process at once, with status 143.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	be := startBackend(t, "second")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"all.yaml": httpGateway(port) + servicesYAML(be) + routeYAML("second", nil, catchAll("second")),
	}, "-drain-period=10m")
	g.once.Do(func() {})
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll.Require(t, 5*time.Second, "/readyz answers 503 after SIGTERM", func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + g.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// Still serving during the drain.
	if res := get(t, newClient(), port, "second.test", "/"); res.status != http.StatusOK {
		t.Errorf("request during the drain: %d", res.status)
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		t.Fatal("rauta did not exit at the second SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(g.err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("exit after the second SIGTERM: %v, want status 143", g.err)
	}
	if !strings.Contains(g.stderr.String(), "second signal") {
		t.Errorf("no log line for the second signal:\n%s", g.stderr.String())
	}
}
