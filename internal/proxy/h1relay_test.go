package proxy

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/h1"
)

// Relay tests: large bodies that reach the engine in pieces, with pauses,
// so every relay path runs: reads straight into the client's write buffer,
// reads through the backend buffer, flushes before a wait, and bodies that
// arrive whole before the relay looks.

// patterned is n bytes that differ from their neighbours' offsets, so a
// lost, doubled or reordered piece shows.
func patterned(n int, seed byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((i*7+int(seed))%26)
	}
	return string(b)
}

// piecewise answers each request with the pieces answer returns, pausing
// between them so the proxy finds the socket empty mid-body.
func piecewise(pause time.Duration, answer func(r *http.Request) []string) func(*wireBackend, net.Conn) {
	return func(b *wireBackend, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			b.record(r.Method + " " + r.RequestURI)
			for i, p := range answer(r) {
				if i > 0 {
					time.Sleep(pause)
				}
				if _, err := io.WriteString(c, p); err != nil {
					return
				}
			}
		}
	}
}

// split cuts s at the given offsets.
func split(s string, at ...int) []string {
	var out []string
	prev := 0
	for _, a := range at {
		out = append(out, s[prev:a])
		prev = a
	}
	return append(out, s[prev:])
}

func TestH1RelayLargeBodiesInPieces(t *testing.T) {
	body := patterned(300<<10, 1)
	lengthHead := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	chunks := []string{patterned(40000, 2), patterned(5, 3), patterned(70000, 4), patterned(3, 5)}
	var chunked strings.Builder
	chunked.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, c := range chunks {
		chunked.WriteString(chunk(c))
	}
	chunked.WriteString("0\r\n\r\n")
	chunkedBody := strings.Join(chunks, "")

	for _, tc := range []struct {
		name   string
		pieces []string
		want   string
	}{
		// The whole response in one write: it has usually arrived before the
		// relay looks, so the body is relayed without waiting.
		{"length, one write", []string{lengthHead + body}, body},
		// A head alone, then the body in pieces that straddle every buffer
		// size the relay uses (32 KiB backend buffer, 68 KiB relay buffer).
		{"length, pieces", split(lengthHead+body, len(lengthHead), len(lengthHead)+1, 33<<10, 100<<10, 101<<10, len(lengthHead)+len(body)-1), body},
		{"chunked, one write", []string{chunked.String()}, chunkedBody},
		// Cuts inside chunk-size lines, inside chunk data and inside the
		// CRLF after it.
		{"chunked, pieces", split(chunked.String(), 60, 100, 20000, 40060, 40061, 40080, 90000, chunked.Len()-3), chunkedBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newWireBackend(t, piecewise(5*time.Millisecond, func(*http.Request) []string { return tc.pieces }))
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			// Twice on one client connection and, pooled, one backend
			// connection: the first relay leaves no state behind.
			for i := range 2 {
				cl.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, got, err := cl.response(http.MethodGet)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d, body error %v", i, resp.StatusCode, err)
				}
				if got != tc.want {
					t.Fatalf("request %d: body of %d bytes differs from the %d sent (first difference at %d)", i, len(got), len(tc.want), firstDiff(got, tc.want))
				}
			}
			if n := be.connections(); n != 1 {
				t.Errorf("backend connections = %d, want 1 (the first was pooled and reused)", n)
			}
		})
	}
}

// TestH1RelayTruncatedLargeBody: a backend that dies mid-way through a large
// body leaves the client with a connection that closes short of the
// declared length, never a response that looks complete.
func TestH1RelayTruncatedLargeBody(t *testing.T) {
	body := patterned(200<<10, 6)
	head := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, head+body[:90<<10])
		time.Sleep(5 * time.Millisecond)
		io.WriteString(c, body[90<<10:150<<10])
		// the connection closes here, 50 KiB short
	})
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	cl.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, got, err := cl.response(http.MethodGet)
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Fatalf("status %d, body error %v: want 200 and a body cut short", resp.StatusCode, err)
	}
	if !strings.HasPrefix(body, got) || len(got) < 150<<10 {
		t.Errorf("relayed %d bytes, want the 150 KiB sent, intact", len(got))
	}
	if !cl.closed() {
		t.Error("client connection still open after a truncated body")
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// streamCase is a response the backend sends in two parts, the second
// only after the client has read the first: a relay that held bytes back
// while waiting for more would never finish.
type streamCase struct {
	name        string
	first, rest string
	firstLen    int    // body bytes in first
	want        string // the body the client reads in the end
}

func streamCases() []streamCase {
	big, small := patterned(40000, 8), patterned(100, 9)
	return []streamCase{
		{"length, large first part", "HTTP/1.1 200 OK\r\nContent-Length: 80000\r\n\r\n" + big, big, len(big), big + big},
		{"length, small first part", "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + small, small, len(small), small + small},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(small), chunk(big) + "0\r\n\r\n", len(small), small + big},
	}
}

// runStreamCase starts the two-part backend and a proxy, and checks the
// body that get (one request through the proxy at addr) returns: its
// first part must arrive while the backend waits.
func runStreamCase(t *testing.T, tc streamCase, get func(addr string) io.ReadCloser) {
	firstRead := make(chan struct{})
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, tc.first)
		select {
		case <-firstRead:
		case <-time.After(wireTimeout):
			return
		}
		io.WriteString(c, tc.rest)
	})
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	body := get(p.addr)
	defer body.Close()
	part := make([]byte, tc.firstLen)
	if _, err := io.ReadFull(body, part); err != nil {
		t.Fatalf("the first %d body bytes did not arrive while the backend waits: %v", tc.firstLen, err)
	}
	close(firstRead)
	rest, err := io.ReadAll(body)
	if err != nil || string(part)+string(rest) != tc.want {
		t.Fatalf("body: %d + %d bytes, error %v; want %d bytes", len(part), len(rest), err, len(tc.want))
	}
}

// TestH1RelayStreamsBeforeWaiting: the HTTP/1.1 engine sends what the
// backend sent before it waits for more.
func TestH1RelayStreamsBeforeWaiting(t *testing.T) {
	for _, tc := range streamCases() {
		t.Run(tc.name, func(t *testing.T) {
			runStreamCase(t, tc, func(addr string) io.ReadCloser {
				cl := dialWire(t, addr)
				cl.c.SetDeadline(time.Now().Add(3 * time.Second))
				cl.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(cl.br, &http.Request{Method: http.MethodGet})
				if err != nil {
					t.Fatalf("no response head while the backend waits: %v", err)
				}
				return resp.Body
			})
		})
	}
}

// TestH1RelayLargeRequestBodies: request bodies larger than the client
// connection's read buffer (they move through a borrowed relay buffer)
// reach the backend whole, and the request pipelined right behind each
// one is read as the next request, not as body: sizes straddle the read
// buffer (4 KiB) and the relay buffer, sent in one write and in pieces.
func TestH1RelayLargeRequestBodies(t *testing.T) {
	summed := func(r *http.Request, body []byte) (string, bool) {
		d := fmt.Sprintf("%s %s %d %x", r.Method, r.RequestURI, len(body), sha256.Sum256(body))
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(d)) + "\r\n\r\n" + d, false
	}
	be := newWireBackend(t, scripted(summed))
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	var raw strings.Builder
	var want []string
	for i, n := range []int{5000, h1.ConnBufferSize, 70000, h1.RelayBufferSize + 1, 300 << 10, 10, 2 * h1.RelayBufferSize} {
		body := patterned(n, byte(i))
		raw.WriteString(withLength(fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\n\r\n", i), body))
		want = append(want, fmt.Sprintf("200 POST /%d %d %x", i, n, sha256.Sum256([]byte(body))))
	}
	raw.WriteString(endRequest)
	want = append(want, fmt.Sprintf("200 GET /end 0 %x", sha256.Sum256(nil)))
	stream := raw.String()
	for _, tc := range []struct {
		name   string
		pieces []string
	}{
		{"one write", []string{stream}},
		{"pieces", split(stream, 30, 4096, 4097, 9000, 70000, 140000, 140001, 400000, len(stream)-5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := dialWire(t, p.addr)
			sent := make(chan error, 1)
			go func() {
				for i, piece := range tc.pieces {
					if i > 0 {
						time.Sleep(2 * time.Millisecond)
					}
					if _, err := io.WriteString(cl.c, piece); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			got, clean := cl.readAll()
			if err := <-sent; err != nil {
				t.Fatalf("sending: %v", err)
			}
			if !slices.Equal(got, want) || !clean {
				t.Errorf("responses (clean end %v):\n got %q\nwant %q", clean, got, want)
			}
		})
	}
}

// TestH1RelayBackendDiesMidRequestBody: a backend that resets the
// connection part-way through a large request body gets the client a 502,
// and the rest of that body is read and dropped exactly: the request
// pipelined behind it is served, not taken for body (or body for it).
func TestH1RelayBackendDiesMidRequestBody(t *testing.T) {
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		if r.ContentLength > 0 {
			io.CopyN(io.Discard, r.Body, 1000)
			c.(*net.TCPConn).SetLinger(0) // a reset, with the body's rest unread
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend")
	})
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	body := patterned(200<<10, 7)
	stream := withLength("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\n\r\n", body) + endRequest
	sent := make(chan error, 1)
	go func() { _, err := io.WriteString(cl.c, stream); sent <- err }()
	got, clean := cl.readAll()
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "502 ") || got[1] != "200 end" || !clean {
		t.Errorf("responses (clean end %v): %q; want a 502, then the pipelined request's 200 end", clean, got)
	}
}
