package h2

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// FuzzServerFrames feeds the bytes after the client preface, frames or
// not, to a Server over net.Pipe, with a handler that reads the body and
// answers. The server must not panic (a panic in the reader, the writer or
// a sweep ends the process; one in the handler's body or response calls is
// logged and fails here) and ServeConn must return once the client has
// closed. The seeds in testdata/fuzz/FuzzServerFrames run in every
// `go test`; hack/fuzz.sh fuzzes from them.
func FuzzServerFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 256<<10 {
			return
		}
		logs := &logBuf{}
		srv := &Server{
			Logger:           logs.logger(),
			ReadTimeout:      time.Second,
			BodyIdleTimeout:  100 * time.Millisecond,
			SendStallTimeout: 100 * time.Millisecond,
			WriteTimeout:     time.Second,
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-T")
			b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				return
			}
			w.Write(b)
			w.Write([]byte(r.URL.Path))
			w.Header().Set("X-T", "t")
		})
		client, server := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(context.Background(), server, h)
		}()
		// The client reads everything the server sends, so that the
		// server's writer never waits on it.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, client)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(client, http2.ClientPreface); err == nil {
			client.Write(in)
		}
		// Give the handlers a moment to run before the close.
		time.Sleep(time.Millisecond)
		client.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn still running 10 s after the client closed")
		}
		<-drained
		if s := logs.String(); strings.Contains(s, "panicked") {
			t.Fatalf("handler panicked in the server's code:\n%s", s)
		}
	})
}
