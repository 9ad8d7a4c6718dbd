package proxy

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// A chunked request body that turns out malformed after its head went to
// the backend (a bad chunk size, data past the chunk) is the client's
// fault: 400 and a close, as nginx and HAProxy answer, not 502 (found by
// bench/probes' h1-chunk-* probes), and its malformed bytes never reach
// the backend as they came.
func TestMalformedChunkedBodyIs400(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{})
	addr := strings.TrimPrefix(p.url(t, "l"), "http://")
	for name, body := range map[string]string{
		"0x size":      "0x3\r\nabc\r\n0\r\n\r\n",
		"negative":     "-3\r\nabc\r\n0\r\n\r\n",
		"data overrun": "3\r\nabcdef\r\n0\r\n\r\n",
		"overflow":     "10000000000000000000000000003\r\nabc\r\n0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("%s: no response: %v", name, err)
		} else if resp.StatusCode != http.StatusBadRequest || !resp.Close {
			t.Errorf("%s: status %d, close %v; want 400 and a close", name, resp.StatusCode, resp.Close)
		}
		c.Close()
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	for _, e := range be.seen {
		if strings.Contains(e.Body, "abcdef") || strings.Contains(e.Body, "0x3") {
			t.Errorf("the backend was sent the malformed body as it came: %+v", e)
		}
	}
}
