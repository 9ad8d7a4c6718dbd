package h2

import (
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestOutputReleasedWhenIdle: a connection whose output batch grew past
// keptOut gives the large buffers back once a trim period passed without
// such a batch (BenchmarkServeBurst pins that it keeps them between bursts
// that need them).
func TestOutputReleasedWhenIdle(t *testing.T) {
	if *refServer {
		t.Skip("inspects this package's connections")
	}
	srv, _ := bigResponse(t)
	if !waitConn(srv, 2*trimEvery+5*time.Second, func(c *conn) bool { return !bigBuffers(c) }) {
		t.Fatalf("the connection still holds an output buffer past %d bytes %v after its last stream", keptOut, 2*trimEvery+5*time.Second)
	}
}

// TestTrimUnderTrickle: a client that made the connection grow its output
// batch and its recycled streams with one burst, then keeps it busy with
// one stream held open and a small request now and then, does not keep
// them: each trim gives back what the last period did not use.
func TestTrimUnderTrickle(t *testing.T) {
	if *refServer {
		t.Skip("inspects this package's connections")
	}
	srv, rc := bigResponse(t)
	// A request whose body never comes keeps a stream open throughout.
	rc.request(3, "POST", "/hold", false)
	// A burst of 32 small requests at once fills the free list.
	for i := range uint32(32) {
		rc.request(5+2*i, "GET", "/small", true)
	}
	ids := make([]uint32, 32)
	for i := range ids {
		ids[i] = 5 + 2*uint32(i)
	}
	if _, err := rc.collect(5*time.Second, ids...); err != nil {
		t.Fatal(err)
	}
	// Then one small request every trimEvery/4, for four periods: the
	// second trim after the burst gives everything back, the others are
	// margin for a late timer.
	id := uint32(5 + 2*32)
	for end := time.Now().Add(4 * trimEvery); time.Now().Before(end); id += 2 {
		rc.request(id, "GET", "/small", true)
		if r := rc.one(id); r.status != "200" {
			t.Fatalf("stream %d: %v", id, r)
		}
		time.Sleep(trimEvery / 4)
	}
	var big bool
	var free int
	waitConn(srv, 0, func(c *conn) bool { big, free = bigBuffers(c), len(c.free); return true })
	if big || free > 2 {
		t.Fatalf("after four periods of one small request at a time the connection holds output buffers past %d bytes: %v, recycled streams: %d (want at most 2)", keptOut, big, free)
	}
}

// bigResponse serves one 4 MiB response on a new connection whose client
// reads nothing until the batch has grown past keptOut, then reads it all.
// Later requests get a small answer.
func bigResponse(t *testing.T) (*Server, *rawClient) {
	t.Helper()
	body := make([]byte, 4<<20)
	srv := &Server{}
	ts := startCleartext(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Write([]byte("small"))
			return
		case "/hold":
			io.Copy(io.Discard, r.Body)
			return
		}
		w.Write(body)
	}))
	rc := ts.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.write(func() error { return rc.fr.WriteWindowUpdate(0, 1<<31-1-initialWindow) })
	rc.request(1, "GET", "/", true)
	if !waitConn(srv, 5*time.Second, bigBuffers) {
		t.Fatalf("the output batch never grew past %d bytes while the client did not read", keptOut)
	}
	if r := rc.one(1); len(r.body) != len(body) {
		t.Fatalf("got %v", r)
	}
	return srv, rc
}

func bigBuffers(c *conn) bool { return cap(c.out) > keptOut || cap(c.spare) > keptOut }

// waitConn waits up to d for cond to hold on a connection of srv (checked
// at least once), under the connection's lock.
func waitConn(srv *Server, d time.Duration, cond func(*conn) bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		srv.mu.Lock()
		for c := range srv.conns {
			c.mu.Lock()
			ok := cond(c)
			c.mu.Unlock()
			if ok {
				srv.mu.Unlock()
				return true
			}
		}
		srv.mu.Unlock()
		if !time.Now().Before(end) {
			return false
		}
	}
}
