package h2

import (
	"context"
	"errors"
	"fmt"
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
