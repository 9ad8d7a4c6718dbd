package h2

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestGoAwayDrain: GoAway sends GOAWAY with the largest stream id first, so
// a stream the client opens right after it is still served, then the final
// GOAWAY with the last stream opened; the in-flight stream completes and
// the connection closes after it.
func TestGoAwayDrain(t *testing.T) {
	if *refServer {
		t.Skip("GoAway is h2.Server's own; net/http's server has no drain")
	}
	body := pattern(64 << 10)
	started := make(chan struct{}, 1)
	release, releaseAll := released()
	defer releaseAll()
	ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		w.Write(body)
	}))
	rc := ts.dialRaw(t)
	rc.request(1, "GET", "/slow", true)
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not start")
	}
	ts.srv.GoAway()
	var goAways []http2.GoAwayFrame
	next := func() {
		t.Helper()
		for i := 0; i < 100; i++ {
			f, err := rc.next(5 * time.Second)
			if err != nil {
				t.Fatalf("waiting for GOAWAY %d: %v", len(goAways)+1, err)
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				goAways = append(goAways, *ga)
				return
			}
		}
		t.Fatal("no GOAWAY in 100 frames")
	}
	next()
	if ga := goAways[0]; ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1<<31-1 {
		t.Fatalf("first GOAWAY: code %v, last stream %d; want NO_ERROR and 2^31-1", ga.ErrCode, ga.LastStreamID)
	}
	// A stream the client opened before it read the first GOAWAY.
	rc.request(3, "GET", "/late", true)
	if r := rc.one(3); r.status != "200" || !bytes.Equal(r.body, body) {
		t.Errorf("stream opened after the first GOAWAY: %v, want 200 and the body", r)
	}
	next()
	if ga := goAways[1]; ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 3 {
		t.Fatalf("second GOAWAY: code %v, last stream %d; want NO_ERROR and 3", ga.ErrCode, ga.LastStreamID)
	}
	rc.request(5, "GET", "/after", true)
	releaseAll()
	res, _ := rc.collect(2*time.Second, 1, 5)
	if r := res[1]; r.status != "200" || !r.ended || !bytes.Equal(r.body, body) {
		t.Errorf("in-flight stream: %v, want 200 with all %d bytes", r, len(body))
	}
	if r := res[5]; r.status != "" {
		t.Errorf("stream opened after the final GOAWAY was served: %v", r)
	}
	if _, closed := rc.waitClosed(5 * time.Second); !closed {
		t.Error("connection still open 5s after its last stream finished")
	}
}

// TestGoAwayNewConnection: a connection opened after GoAway serves its
// first stream, then gets GOAWAY like the others.
func TestGoAwayNewConnection(t *testing.T) {
	if *refServer {
		t.Skip("GoAway is h2.Server's own; net/http's server has no drain")
	}
	ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	ts.srv.GoAway()
	rc := ts.dialRaw(t)
	rc.request(1, "GET", "/", true)
	if r := rc.one(1); r.status != "200" || string(r.body) != "ok" {
		t.Fatalf("first stream of a connection opened during the drain: %v", r)
	}
	ga, closed := rc.waitClosed(5 * time.Second)
	if !closed || ga == nil || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Errorf("after its first stream: closed %v, last GOAWAY %+v; want the final GOAWAY (last stream 1) and a close", closed, ga)
	}
}
