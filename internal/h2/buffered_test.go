package h2

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestBodyBuffered pins the request body's Buffered: false while the
// client has not ended the body, true once the END_STREAM arrived (before
// anything is read), so a proxy can send it without a goroutine.
func TestBodyBuffered(t *testing.T) {
	if *refServer {
		t.Skip("Buffered is h2.Server's own")
	}
	open, done := make(chan bool, 1), make(chan error, 1)
	sent := make(chan struct{})
	ts := startCleartext(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := r.Body.(interface{ Buffered() bool })
		if !ok {
			done <- errNotBuffered
			return
		}
		open <- b.Buffered()
		<-sent
		deadline := time.Now().Add(5 * time.Second)
		for !b.Buffered() {
			if time.Now().After(deadline) {
				done <- errNotBuffered
				return
			}
			time.Sleep(time.Millisecond)
		}
		body, err := io.ReadAll(r.Body)
		if err == nil && string(body) != "hello world" {
			err = errNotBuffered
		}
		done <- err
	}))
	rc := ts.dialRaw(t)
	rc.request(1, "POST", "/", false)
	rc.data(1, false, []byte("hello "))
	select {
	case got := <-open:
		if got {
			t.Error("Buffered is true while the client has not ended the body")
		}
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not run")
	}
	rc.data(1, true, []byte("world"))
	close(sent)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not finish")
	}
}

var errNotBuffered = errors.New("body not Buffered once its END_STREAM arrived, or read wrong")
