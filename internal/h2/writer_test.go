package h2

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestOutputReleasedWhenIdle: a connection whose output batch grew past
// keptOut gives the large buffers back once it had no open stream for
// releaseDelay (BenchmarkServeBurst pins that it keeps them between
// bursts).
func TestOutputReleasedWhenIdle(t *testing.T) {
	if *refServer {
		t.Skip("inspects this package's connections")
	}
	body := make([]byte, 4<<20)
	srv := &Server{}
	ts := startCleartext(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	rc := ts.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.write(func() error { return rc.fr.WriteWindowUpdate(0, 1<<31-1-initialWindow) })
	rc.request(1, "GET", "/", true)
	// The client reads nothing yet: the socket fills and the batch grows.
	if !waitOutput(srv, 5*time.Second, true) {
		t.Fatalf("the output batch never grew past %d bytes while the client did not read", keptOut)
	}
	if r := rc.one(1); len(r.body) != len(body) {
		t.Fatalf("got %v", r)
	}
	if !waitOutput(srv, releaseDelay+5*time.Second, false) {
		t.Fatalf("the connection still holds an output buffer past %d bytes %v after its last stream", keptOut, releaseDelay+5*time.Second)
	}
}

// waitOutput waits up to d for a connection of srv to hold an output
// buffer larger than keptOut (big), or for none to (!big).
func waitOutput(srv *Server, d time.Duration, big bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		found := false
		srv.mu.Lock()
		for c := range srv.conns {
			c.mu.Lock()
			found = found || cap(c.out) > keptOut || cap(c.spare) > keptOut
			c.mu.Unlock()
		}
		srv.mu.Unlock()
		if found == big {
			return true
		}
	}
	return false
}
