package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/ir"
)

// grpcMessage is a length-prefixed gRPC message of 16 bytes.
var grpcMessage = append([]byte{0, 0, 0, 0, 16}, bytes.Repeat([]byte("m"), 16)...)

// hpackBlock encodes fields without the dynamic table, so that the block
// can be sent again and again on one connection.
func hpackBlock(fields ...[2]string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(0)
	for _, f := range fields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return buf.Bytes()
}

// bigWindows gives the peer's sending side windows it does not exhaust
// in a benchmark's run, so no WINDOW_UPDATE is needed per request.
func bigWindows(tb testing.TB, fr *http2.Framer) {
	tb.Helper()
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
		tb.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		tb.Fatal(err)
	}
}

// cannedGRPCBackend is an h2c backend answering every call with the same
// head, one message and grpc-status 0 trailers, once the request's
// stream ended. It decodes no headers and reuses its frames, so it
// allocates (almost) nothing per call.
func cannedGRPCBackend(tb testing.TB) ir.Backend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	head := hpackBlock([2]string{":status", "200"}, [2]string{"content-type", "application/grpc"})
	trailers := hpackBlock([2]string{"grpc-status", "0"})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tb.Cleanup(func() { c.Close() })
			go serveCannedGRPC(tb, c, head, trailers)
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return ir.Backend{Name: "default/grpc:80", Weight: 1, AppProtocol: "h2c",
		Endpoints: []ir.Endpoint{{Address: a.IP.String(), Port: uint32(a.Port)}}}
}

func serveCannedGRPC(tb testing.TB, c net.Conn, head, trailers []byte) {
	defer c.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	if _, err := io.ReadFull(br, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(bw, br)
	fr.SetReuseFrames()
	bigWindows(tb, fr)
	bw.Flush()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		var ended uint32
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				ended = f.StreamID
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended = f.StreamID
			}
		}
		if ended != 0 {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ended, BlockFragment: head, EndHeaders: true})
			fr.WriteData(ended, false, grpcMessage)
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ended, BlockFragment: trailers, EndHeaders: true, EndStream: true})
		}
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

// grpcCaller makes unary calls over one h2c connection (prior knowledge)
// to the proxy with a raw framer: it decodes no headers and reuses its
// frames, so allocations per call are the proxy's.
type grpcCaller struct {
	fr   *http2.Framer
	head []byte
	id   uint32
}

func newGRPCCaller(tb testing.TB, addr string, fields ...[2]string) *grpcCaller {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		tb.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.SetReuseFrames()
	bigWindows(tb, fr)
	return &grpcCaller{fr: fr, head: hpackBlock(fields...), id: 1}
}

// call sends one request message and reads up to the response's
// trailers, failing unless they came after exactly one message.
func (g *grpcCaller) call(tb testing.TB) {
	id := g.id
	g.id += 2
	if err := g.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: g.head, EndHeaders: true}); err != nil {
		tb.Fatal(err)
	}
	if err := g.fr.WriteData(id, true, grpcMessage); err != nil {
		tb.Fatal(err)
	}
	heads, data := 0, 0
	for {
		f, err := g.fr.ReadFrame()
		if err != nil {
			tb.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				g.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			tb.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.DataFrame:
			if f.StreamID == id {
				data += len(f.Data())
			}
		case *http2.HeadersFrame:
			if f.StreamID != id {
				continue
			}
			heads++
			if f.StreamEnded() {
				if heads != 2 || data != len(grpcMessage) {
					tb.Fatalf("stream %d: %d header blocks and %d body bytes; want the head, %d bytes and trailers", id, heads, data, len(grpcMessage))
				}
				return
			}
		}
	}
}

// BenchmarkGRPCUnary measures a unary gRPC call through the proxy, h2c by
// prior knowledge in and to an h2c backend, with a grpc-timeout as
// grpc-go sends for a call with a deadline: the HTTP/2 server, routing,
// the forward over the backend's HTTP/2 client and the trailers' relay.
// Client and backend allocate (almost) nothing per call, so allocs/op is
// the proxy's own.
func BenchmarkGRPCUnary(b *testing.B) {
	snap := &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("http", catchAll(prefixRoute("default/grpc", "/", cannedGRPCBackend(b)))),
	}}
	p := startProxy(b, snap, Options{})
	g := newGRPCCaller(b, p.Addr("http").String(),
		[2]string{":method", "POST"}, [2]string{":scheme", "http"}, [2]string{":authority", "grpc.example"},
		[2]string{":path", "/bench.Echo/Unary"}, [2]string{"content-type", "application/grpc"},
		[2]string{"te", "trailers"}, [2]string{"grpc-timeout", "5S"}, [2]string{"user-agent", "grpc-go/1.70.0"})
	g.call(b) // dial the backend, warm the pools
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g.call(b)
	}
}
