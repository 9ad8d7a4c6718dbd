package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// FuzzRequestBytes sends arbitrary bytes to a running gateway. Whatever
// arrives, the gateway answers with a well-formed HTTP response or closes
// the connection, never crashes, and serves the next good request.
func FuzzRequestBytes(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET /\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: !!\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://other/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n Folded: header\r\n\r\n",
		"\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(seed))
	}
	be := startBackend(f, "fuzz")
	port := freePort(f)
	g := startGateway(f, map[string]string{
		"all.yaml": httpGateway(port) + servicesYAML(be) + routeYAML("fuzz", nil, catchAll("fuzz")),
	}, "-access-log=false")
	c := newClient()

	f.Fuzz(func(t *testing.T, payload []byte) {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(payload); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("write: %v (the gateway may close early)", err)
		}
		// Half-close: the gateway sees the end of the input at once instead
		// of waiting for more bytes until a timeout.
		_ = conn.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(conn)
		// After the HTTP/2 connection preface the gateway speaks HTTP/2
		// (h2c prior knowledge): its frames are not an HTTP/1 response.
		h2 := bytes.HasPrefix(payload, []byte(http2.ClientPreface))
		if _, err := br.Peek(1); err == nil && !h2 {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("gateway answered %q with a malformed response: %v", abbreviate(string(payload)), err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 100 || resp.StatusCode > 599 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		g.alive(t)
		if res := get(t, c, port, "x.test", "/next"); res.status != http.StatusOK {
			t.Fatalf("after %q: next request got %d", abbreviate(string(payload)), res.status)
		}
	})
}
