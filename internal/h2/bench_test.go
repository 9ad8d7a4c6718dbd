package h2

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// benchConn serves h on one loopback h2c connection and returns a raw
// framer client on it: the client decodes no headers and reuses frames,
// so allocations per operation are nearly all the server's.
func benchConn(b *testing.B, h http.Handler) (net.Conn, *http2.Framer) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &Server{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv.ServeConn(context.Background(), c, h)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); ln.Close(); <-done })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		b.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.SetReuseFrames()
	// A window the responses never exhaust, so the client needs to send
	// no WINDOW_UPDATE per response.
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
		b.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 1<<31-1-initialWindow); err != nil {
		b.Fatal(err)
	}
	return c, fr
}

// BenchmarkServe measures one request and its response on one connection,
// one stream at a time: a GET answered with 1 KiB, and a POST of 1 KiB
// echoed. Its allocs/op is the server's per-request allocation.
func BenchmarkServe(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	get := requestBlock("/")
	var pbuf bytes.Buffer
	enc := hpack.NewEncoder(&pbuf)
	enc.SetMaxDynamicTableSizeLimit(0)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "example.test"}, {":path", "/"}, {"content-length", "1024"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	post := pbuf.Bytes()
	// A gRPC client's head: names outside net/textproto's table.
	var gbuf bytes.Buffer
	genc := hpack.NewEncoder(&gbuf)
	genc.SetMaxDynamicTableSizeLimit(0)
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "example.test"}, {":path", "/svc/M"},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"grpc-timeout", "1S"}, {"grpc-accept-encoding", "gzip"}, {"user-agent", "grpc-go"}} {
		genc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	grpcHead := gbuf.Bytes()
	cases := []struct {
		name  string
		block []byte
		data  []byte
		h     http.HandlerFunc
	}{
		{"GET", get, nil, func(w http.ResponseWriter, r *http.Request) { w.Write(body) }},
		// As the proxy's pooled path: one watch on the request's context
		// for the backend exchange, stopped when it ends.
		{"GET-AfterFunc", get, nil, func(w http.ResponseWriter, r *http.Request) {
			stop := context.AfterFunc(r.Context(), func() {})
			w.Write(body)
			stop()
		}},
		// The same watch through this package's AfterFunc.
		{"GET-h2.AfterFunc", get, nil, func(w http.ResponseWriter, r *http.Request) {
			stop := AfterFunc(r.Context(), func() {})
			w.Write(body)
			stop()
		}},
		// As the proxy relays a gRPC response: trailers set with
		// http.TrailerPrefix after the body.
		{"GET-trailers", get, nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{"application/grpc"}
			w.Write(body)
			w.Header()[http.TrailerPrefix+"Grpc-Status"] = []string{"0"}
			w.Header()[http.TrailerPrefix+"Grpc-Message"] = []string{""}
		}},
		// Request field names the connection canonicalizes once.
		{"GET-grpc-fields", grpcHead, nil, func(w http.ResponseWriter, r *http.Request) { w.Write(body) }},
		{"POST", post, body, func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.ReadFull(r.Body, make([]byte, 1<<10))
			w.Write(body[:n])
		}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			_, fr := benchConn(b, bc.h)
			id := uint32(1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: bc.block, EndStream: bc.data == nil, EndHeaders: true}); err != nil {
					b.Fatal(err)
				}
				if bc.data != nil {
					if err := fr.WriteData(id, true, bc.data); err != nil {
						b.Fatal(err)
					}
				}
				for ended := false; !ended; {
					f := benchFrame(b, fr)
					ended = f.Header().StreamID == id && f.Header().Flags.Has(http2.FlagDataEndStream)
				}
				id += 2
			}
		})
	}
}

// BenchmarkServeBurst measures bursts of 64 concurrent GETs answered with
// 1 KiB each, the client waiting for the whole burst before the next, as
// h2load -m64 often does: the connection has no open stream between
// bursts. An operation is one burst; its allocs/op pins that the output
// batch (past 64 KiB) is not regrown after each one.
func BenchmarkServeBurst(b *testing.B) {
	const streams = 64
	body := bytes.Repeat([]byte("x"), 1<<10)
	_, fr := benchConn(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	get := requestBlock("/")
	id := uint32(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		first := id
		for range streams {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: get, EndStream: true, EndHeaders: true}); err != nil {
				b.Fatal(err)
			}
			id += 2
		}
		for ended := 0; ended < streams; {
			if f, ok := benchFrame(b, fr).(*http2.DataFrame); ok && f.StreamEnded() && f.StreamID >= first {
				ended++
			}
		}
	}
}

// benchFrame reads the server's next frame: it acknowledges SETTINGS and
// fails the benchmark on a reset stream or GOAWAY.
func benchFrame(b *testing.B, fr *http2.Framer) http2.Frame {
	f, err := fr.ReadFrame()
	if err != nil {
		b.Fatal(err)
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			fr.WriteSettingsAck()
		}
	case *http2.RSTStreamFrame:
		b.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
	case *http2.GoAwayFrame:
		b.Fatalf("GOAWAY %v", f.ErrCode)
	}
	return f
}
