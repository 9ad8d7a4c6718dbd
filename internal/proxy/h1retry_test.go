package proxy

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// TestH1WireRetry: the engine itself retries a request of a route with a
// retry policy when its body came with the head: the retried response
// never reaches the client, the body is sent again whole, a request
// pipelined behind it is served next, and the answer keeps the backend's
// header case, which only the engine does (net/http canonicalizes it). A
// request whose body comes later goes to net/http, which retries it too.
func TestH1WireRetry(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	be := newWireBackend(t, scripted(func(r *http.Request, body []byte) (string, bool) {
		mu.Lock()
		hits[r.RequestURI]++
		n := hits[r.RequestURI]
		mu.Unlock()
		if strings.HasPrefix(r.RequestURI, "/flaky") && n == 1 {
			return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\n\r\nfailed", false
		}
		d := describe(r, body)
		return withLength("HTTP/1.1 200 OK\r\nx-attempt-CASE: kept\r\nContent-Length: LEN\r\n\r\n", d), false
	}))
	rt := prefixRoute("r", "/", be.backend())
	rt.Retry = &ir.Retry{Codes: []int{500}, Attempts: 2, Backoff: time.Millisecond}
	p := startWireProxy(t, rt)

	cl := dialWire(t, p.addr)
	cl.send(withLength("POST /flaky1 HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\n\r\n", "payload") +
		"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body, err := cl.response(http.MethodPost)
	if err != nil || resp.StatusCode != 200 || body != "POST /flaky1 7:payload" {
		t.Fatalf("retried POST: %d %q %v", resp.StatusCode, body, err)
	}
	if !strings.Contains(cl.raw.String(), "\r\nx-attempt-CASE: kept\r\n") || strings.Contains(cl.raw.String(), "failed") {
		t.Errorf("the engine did not serve the retry alone: client got %q", cl.raw.String())
	}
	if resp, body, err := cl.response(http.MethodGet); err != nil || resp.StatusCode != 200 || body != "GET /next 0:" {
		t.Errorf("pipelined request after the retry: %d %q %v", resp.StatusCode, body, err)
	}

	// The body comes after the head: net/http buffers it for the replay
	// and answers with its own header case.
	late := dialWire(t, p.addr)
	late.send("POST /flaky2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	late.send("late")
	resp, body, err = late.response(http.MethodPost)
	if err != nil || resp.StatusCode != 200 || body != "POST /flaky2 4:late" {
		t.Fatalf("retried POST with a late body: %d %q %v", resp.StatusCode, body, err)
	}
	if !strings.Contains(late.raw.String(), "\r\nX-Attempt-Case: kept\r\n") {
		t.Errorf("a late body was not handed to net/http: client got %q", late.raw.String())
	}
	want := []string{"POST /flaky1 7:payload", "POST /flaky1 7:payload", "GET /next 0:", "POST /flaky2 4:late", "POST /flaky2 4:late"}
	if got := be.requests(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("backend saw %q, want %q", got, want)
	}
}

// TestH1RetryBackoffEndsWithTheClient: a client that goes away during a
// long backoff ends the request within about a second (recorded as 499),
// and no retry is sent for it.
func TestH1RetryBackoffEndsWithTheClient(t *testing.T) {
	be := newWireBackend(t, scripted(func(*http.Request, []byte) (string, bool) {
		return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false
	}))
	rt := prefixRoute("r", "/", be.backend())
	rt.Retry = &ir.Retry{Codes: []int{500}, Attempts: 2, Backoff: 5 * time.Second}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(rt))}}, Options{})
	cl := dialWire(t, strings.TrimPrefix(p.url(t, "l"), "http://"))
	cl.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	for deadline := time.Now().Add(5 * time.Second); len(be.requests()) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cl.c.Close()
	ended := false
	for deadline := time.Now().Add(3 * time.Second); !ended && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ended = p.histogramCount(t, "http_server_request_duration_seconds", "http_route", "r", "http_response_status_code", "499") == 1
	}
	if !ended {
		t.Error("the request did not end within 3 s of its client going away during a 5 s backoff")
	}
	if got := be.requests(); len(got) != 1 {
		t.Errorf("backend saw %q, want the first attempt only", got)
	}
}
