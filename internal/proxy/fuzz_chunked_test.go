package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/ir"
)

// FuzzRelayChunked sends arbitrary bytes as the chunked body of a backend
// response through the HTTP/1.1 engine (relayChunked: chunk-size lines,
// data, the CRLF after it, trailers) to a client. The engine must never
// panic, and a body the client receives whole must be exactly what
// the reference decoder below finds in the backend's bytes: the engine
// relays exactly the valid bodies (CRLF line ends, RFC 9112 chunk-size
// lines, well-formed trailers), and never changes the data. The reference is refChunked: RFC 9112
// 7.1's framing written out plainly over the engine's line parsers, which
// FuzzParseChunkSize checks on their own.
func FuzzRelayChunked(f *testing.F) {
	for _, s := range []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5\r\nhello\r\n6;ext=\"v\"\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n",
		"5\nhello\n0\n\n",
		"5\r\nhello0\r\n\r\n",
		"fffffffffffffff\r\nx",
		"5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n",
		"3 \t;a=b;c\r\nabc\r\n0\r\n\r\n",
		"2\r\nab\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmugg",
	} {
		f.Add([]byte(s))
	}
	be := newChunkedBackend(f)
	route := prefixRoute("r", "/", ir.Backend{Name: "default/chunked:80", Weight: 1,
		Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: uint32(be.ln.Addr().(*net.TCPAddr).Port)}}})
	p := startProxy(f, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(route))}}, Options{})
	addr := p.Addr("l").String()

	f.Fuzz(func(t *testing.T, body []byte) {
		be.body.Store(&body)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodGet})
		if err != nil {
			// The engine refused before the response head: it closes, or
			// answers with its own 502 (then ReadResponse succeeds).
			return
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		whole := resp.StatusCode == http.StatusOK && err == nil
		want, verdict := refChunked(body)
		switch {
		case verdict == chunkedUnsure:
		case verdict == chunkedValid && !whole:
			t.Fatalf("the engine did not relay the valid chunked body %q: status %d, %q, %v", body, resp.StatusCode, got, err)
		case verdict == chunkedInvalid && whole:
			t.Fatalf("the engine relayed the invalid chunked body %q whole, as %q", body, got)
		case whole && !bytes.Equal(got, want):
			t.Fatalf("the engine relayed %q as %q, want %q", body, got, want)
		}
		// net/http's reader is more lenient in some ways (bare LF) and
		// stricter in others (whitespace before an extension, which RFC
		// 9112 allows): where it decodes the body, the data must agree.
		if whole {
			if dec, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(body))); err == nil && !bytes.Equal(dec, got) {
				t.Fatalf("the engine relayed %q as %q, net/http decodes %q", body, got, dec)
			}
		}
	})
}

// chunkedBackend answers every request with a chunked 200 whose body is
// the current fuzz input, then closes the connection.
type chunkedBackend struct {
	ln   net.Listener
	body atomic.Pointer[[]byte]
	wg   sync.WaitGroup
}

func newChunkedBackend(tb testing.TB) *chunkedBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &chunkedBackend{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				body := b.body.Load()
				if body == nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
				c.Write(*body)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

type chunkedVerdict int

const (
	chunkedValid chunkedVerdict = iota
	chunkedInvalid
	// chunkedUnsure: a line reaches maxChunkLine, where whether the engine
	// refuses it depends on how the bytes arrived.
	chunkedUnsure
)

// refChunked decodes a chunked body as RFC 9112 7.1 frames it: lines end
// in CRLF; a chunk-size line (parseChunkSize), that many bytes of data and
// a CRLF, until size 0; then trailer lines (validTrailer) through an empty
// one. Bytes after that are not the body's.
func refChunked(b []byte) ([]byte, chunkedVerdict) {
	var data []byte
	line := func() ([]byte, chunkedVerdict) {
		i := bytes.Index(b, crlf)
		if i < 0 {
			if len(b) >= h1.MaxChunkLine {
				return nil, chunkedUnsure
			}
			return nil, chunkedInvalid
		}
		l := b[:i]
		b = b[i+2:]
		if len(l) >= h1.MaxChunkLine {
			return nil, chunkedUnsure
		}
		return l, chunkedValid
	}
	for {
		l, v := line()
		if v != chunkedValid {
			return nil, v
		}
		n, err := h1.ParseChunkSize(l)
		if err != nil {
			return nil, chunkedInvalid
		}
		if n == 0 {
			break
		}
		if int64(len(b)) < n+2 {
			return nil, chunkedInvalid
		}
		data = append(data, b[:n]...)
		if !bytes.HasPrefix(b[n:], crlf) {
			return nil, chunkedInvalid
		}
		b = b[n+2:]
	}
	for {
		l, v := line()
		if v != chunkedValid {
			return nil, v
		}
		if len(l) == 0 {
			return data, chunkedValid
		}
		if !h1.ValidTrailer(l) {
			return nil, chunkedInvalid
		}
	}
}
