package h2client

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkRoundTrip measures a GET with a 1 KiB response against a
// canned responder (whose own costs are a frame read and two writes per
// request), so that -benchmem pins the client's allocations per request.
func BenchmarkRoundTrip(b *testing.B) {
	addr := cannedServer(b, 1<<10)
	tr := New(Options{})
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/echo.Echo/Unary", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Request-Id", "0123456789abcdef")
	buf := make([]byte, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			k, err := resp.Body.Read(buf)
			n += k
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		resp.Body.Close()
		if n != 1<<10 {
			b.Fatalf("%d body bytes", n)
		}
	}
}

// cannedServer answers every request stream with the same head (status,
// content type, content length) and a body of size bytes.
func cannedServer(b *testing.B, size int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":status", "200"}, {"content-type", "application/octet-stream"}, {"content-length", "1024"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	head, body := hb.Bytes(), make([]byte, size)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := io.ReadFull(br, make([]byte, len(http2.ClientPreface))); err != nil {
					return
				}
				bw := bufio.NewWriter(c)
				fr := http2.NewFramer(bw, br)
				fr.WriteSettings()
				bw.Flush()
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							fr.WriteSettingsAck()
						}
					case *http2.HeadersFrame:
						if f.StreamEnded() {
							fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: head, EndHeaders: true})
							fr.WriteData(f.StreamID, true, body)
						}
					}
					if br.Buffered() == 0 {
						bw.Flush()
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
