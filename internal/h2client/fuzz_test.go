package h2client

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzClientFrames feeds a backend's bytes after its SETTINGS, frames or
// not, to a Transport over net.Pipe while a GET (and its body read) runs.
// The client must not panic, RoundTrip and the body read must return
// (the request's deadline bounds both), and the Transport must serve
// nothing it did not receive: a response's body bytes are checked against
// the input's DATA only by length bound.
func FuzzClientFrames(f *testing.F) {
	f.Add(seedResponse(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200", "content-length", "5"), EndHeaders: true})
		fr.WriteData(1, true, []byte("hello"))
	}))
	f.Add(seedResponse(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200"), EndHeaders: true})
		fr.WriteDataPadded(1, false, []byte("a"), make([]byte, 7))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("grpc-status", "0"), EndHeaders: true, EndStream: true})
	}))
	f.Add(seedResponse(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "100"), EndHeaders: true})
		b := block(":status", "204", "x-a", "b")
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:2], EndStream: true})
		fr.WriteContinuation(1, true, b[2:])
		fr.WritePing(false, [8]byte{1})
		fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	}))
	f.Add(seedResponse(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		fr.WriteWindowUpdate(0, 1<<30)
		fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	}))
	f.Fuzz(runFuzzInput)
}

func runFuzzInput(t *testing.T, in []byte) {
	if len(in) > 256<<10 {
		return
	}
	client, server := net.Pipe()
	defer server.Close()
	tr := New(Options{DialTimeout: time.Second, Dial: func(context.Context, string, string) (net.Conn, error) { return client, nil }})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, server)
	}()
	go func() {
		server.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fr := http2.NewFramer(server, nil)
		if fr.WriteSettings() == nil {
			server.Write(in)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://backend/", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if len(body) > len(in) {
			t.Errorf("body of %d bytes from %d bytes of input", len(body), len(in))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RoundTrip or the body read still running 10 s after the request's deadline")
	}
	server.Close()
	<-drained
}

// seedResponse is the bytes write puts out with a framer, block encoding
// header fields (name, value pairs) with HPACK.
func seedResponse(write func(fr *http2.Framer, block func(...string) []byte)) []byte {
	var out, hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func(kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	fr := http2.NewFramer(&out, nil)
	fr.WriteSettingsAck()
	write(fr, block)
	return out.Bytes()
}
