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

// hpackBlocks encodes header blocks twice in turn with one encoder: the
// first round adds their fields to the dynamic table, the second refers to
// the table only, so those blocks can be sent again and again after the
// first round, as a peer that repeats its fields sends them.
func hpackBlocks(blocks ...[][2]string) (first, again [][]byte) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for round := range 2 {
		for _, fields := range blocks {
			for _, f := range fields {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			b := bytes.Clone(buf.Bytes())
			buf.Reset()
			if round == 0 {
				first = append(first, b)
			} else {
				again = append(again, b)
			}
		}
	}
	return first, again
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
// stream ended. It decodes no headers and reuses its DATA frames.
func cannedGRPCBackend(tb testing.TB) ir.Backend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tb.Cleanup(func() { c.Close() })
			go serveCannedGRPC(tb, c)
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return ir.Backend{Name: "default/grpc:80", Weight: 1, AppProtocol: "h2c",
		Endpoints: []ir.Endpoint{{Address: a.IP.String(), Port: uint32(a.Port)}}}
}

func serveCannedGRPC(tb testing.TB, c net.Conn) {
	defer c.Close()
	// The first response adds its fields to the connection's table, the
	// later ones refer to it.
	blocks, again := hpackBlocks([][2]string{{":status", "200"}, {"content-type", "application/grpc"}}, [][2]string{{"grpc-status", "0"}})
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
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ended, BlockFragment: blocks[0], EndHeaders: true})
			fr.WriteData(ended, false, grpcMessage)
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ended, BlockFragment: blocks[1], EndHeaders: true, EndStream: true})
			blocks = again
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
// DATA frames (x/net's Framer allocates each HEADERS frame it reads).
type grpcCaller struct {
	fr          *http2.Framer
	head, again []byte // the request head's first block, then the one sent again
	id          uint32
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
	first, again := hpackBlocks(fields)
	return &grpcCaller{fr: fr, head: first[0], again: again[0], id: 1}
}

// call sends one request message and reads up to the response's
// trailers, failing unless they came after exactly one message.
func (g *grpcCaller) call(tb testing.TB) {
	id := g.id
	g.id += 2
	if err := g.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: g.head, EndHeaders: true}); err != nil {
		tb.Fatal(err)
	}
	g.head = g.again
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
// prior knowledge in and to an h2c backend: the HTTP/2 server, routing,
// the forward over the backend's HTTP/2 client and the trailers' relay;
// "deadline" with a grpc-timeout, as grpc-go sends for a call with a
// deadline. Client and backend decode no headers and send their fields as
// repeating peers do, from the HPACK table; of allocs/op, three are theirs
// (x/net's Framer allocates every HEADERS frame it reads: two per call at
// the client, one at the backend), the rest the proxy's.
func BenchmarkGRPCUnary(b *testing.B) {
	head := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "grpc.example"},
		{":path", "/bench.Echo/Unary"}, {"content-type", "application/grpc"}, {"te", "trailers"}, {"user-agent", "grpc-go/1.70.0"}}
	for _, bc := range []struct {
		name   string
		fields [][2]string
	}{
		{"no-deadline", head},
		{"deadline", append(head, [2]string{"grpc-timeout", "5S"})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			snap := &ir.Snapshot{Listeners: []ir.Listener{
				httpListener("http", catchAll(prefixRoute("default/grpc", "/", cannedGRPCBackend(b)))),
			}}
			p := startProxy(b, snap, Options{})
			g := newGRPCCaller(b, p.Addr("http").String(), bc.fields...)
			g.call(b) // dial the backend, warm the pools
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				g.call(b)
			}
		})
	}
}
