package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestStreamIDInRequestContext: each handler reads its own stream's
// identifier from its request's context, and the address the client
// dialled, as from net/http's requests (streams 1, 3 and 9 of one
// connection, open at the same time), and a context derived from the
// request's still ends when the stream does.
func TestStreamIDInRequestContext(t *testing.T) {
	derivedStarted, derivedEnded := make(chan struct{}, 1), make(chan error, 1)
	ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/derived" {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			derivedStarted <- struct{}{}
			<-ctx.Done()
			derivedEnded <- context.Cause(ctx)
			return
		}
		fmt.Fprint(w, StreamID(r.Context()), " ", r.Context().Value(http.LocalAddrContextKey))
	}))
	rc := ts.dialRaw(t)
	ids := []uint32{1, 3, 9}
	for _, id := range ids {
		rc.request(id, "GET", "/", true)
	}
	res, err := rc.collect(5*time.Second, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got, want := string(res[id].body), fmt.Sprint(id, " ", ts.addr); got != want {
			t.Errorf("stream %d: handler read stream ID and local address %q, want %q", id, got, want)
		}
	}
	if got := StreamID(context.Background()); got != 0 {
		t.Errorf("StreamID of a context not from a request: %d, want 0", got)
	}

	rc.request(11, "GET", "/derived", true)
	select {
	case <-derivedStarted:
	case <-time.After(5 * time.Second):
		t.Fatal("handler of stream 11 did not start")
	}
	rc.write(func() error { return rc.fr.WriteRSTStream(11, http2.ErrCodeCancel) })
	if err := <-derivedEnded; !errors.Is(err, context.Canceled) {
		t.Errorf("context derived from the request's after RST_STREAM: %v, want context.Canceled", err)
	}
}

// TestRequestContextEndsWithServeConns: the requests' contexts end when
// the context ServeConn was given ends, functions registered with
// context.AfterFunc on a request's context run then, and one unregistered
// before does not.
func TestRequestContextEndsWithServeConns(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	afterRan, stoppedRan := make(chan struct{}), make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		stop := context.AfterFunc(ctx, func() { stoppedRan <- struct{}{} })
		if !stop() {
			ended <- errors.New("stop of a live AfterFunc reported false")
			return
		}
		context.AfterFunc(ctx, func() { close(afterRan) })
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		started <- struct{}{}
		<-derived.Done()
		ended <- ctx.Err()
	})
	sc, cc := net.Pipe()
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{})
	go func() {
		defer close(served)
		(&Server{}).ServeConn(ctx, sc, h)
	}()
	go io.Copy(io.Discard, cc) //nolint:errcheck // drains the server's frames until the pipe closes
	if _, err := io.WriteString(cc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(cc, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: requestBlock("/"), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not start")
	}
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("request's context after ServeConn's ended: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request's context still live 5 s after ServeConn's ended")
	}
	<-afterRan
	select {
	case <-stoppedRan:
		t.Error("an AfterFunc stopped before the context ended ran")
	default:
	}
	cc.Close()
	<-served
}

// TestAfterFunc: the package's AfterFunc on a request's context runs f
// once the stream ends, in a goroutine of its own (the client's reset
// reaches cancel on the reader, which holds the connection's lock: f
// blocking there would stall the connection), and not after stop; on
// another context it is context.AfterFunc.
func TestAfterFunc(t *testing.T) {
	release, ran, stoppedRan := make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	started := make(chan struct{}, 1)
	ts := startCleartext(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/watched" {
			fmt.Fprint(w, "ok")
			return
		}
		stop := AfterFunc(r.Context(), func() { stoppedRan <- struct{}{} })
		if !stop() {
			t.Error("stop of a live AfterFunc reported false")
		}
		AfterFunc(r.Context(), func() {
			<-release
			close(ran)
		})
		started <- struct{}{}
		<-r.Context().Done()
	}))
	rc := ts.dialRaw(t)
	rc.request(1, "GET", "/watched", true)
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not start")
	}
	rc.write(func() error { return rc.fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	rc.request(3, "GET", "/", true)
	if res := rc.one(3); string(res.body) != "ok" {
		t.Fatalf("stream 3 after the reset of 1: %v", res)
	}
	close(release)
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not run 5 s after the stream was reset")
	}
	select {
	case <-stoppedRan:
		t.Error("an AfterFunc stopped before the context ended ran")
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	other := make(chan struct{})
	AfterFunc(ctx, func() { close(other) })
	cancel()
	select {
	case <-other:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc on another context did not run")
	}
}
