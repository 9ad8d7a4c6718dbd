package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/echo"
)

// newClient is an HTTP/1.1 client that never follows redirects, so tests
// see the gateway's own answer.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// countingDial dials TCP and counts every new connection in dials, so a test
// can tell a reused connection from a new one.
func countingDial(dials *atomic.Int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
}

// countingClient is an HTTP/1.1 client whose new connections count in dials.
func countingClient(dials *atomic.Int32) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: countingDial(dials)}, Timeout: 10 * time.Second}
}

// request builds a request to the gateway's port on loopback with the given
// Host header; target is the path and query.
func request(t *testing.T, method string, port int, host, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(port)+target, nil)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, target, err)
	}
	req.Host = host
	return req
}

// result is a response with its body read.
type result struct {
	status int
	header http.Header
	body   []byte
	proto  string
}

// reply decodes the echo backend's JSON; it fails the test when the body is
// not one (e.g. the gateway answered itself).
func (r result) reply(t *testing.T) echo.Reply {
	t.Helper()
	var rep echo.Reply
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("status %d: body is not an echo reply: %v\n%s", r.status, err, r.body)
	}
	return rep
}

// do sends req and reads the whole response.
func do(t *testing.T, c *http.Client, req *http.Request) result {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", req.Method, req.URL, req.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: body, proto: resp.Proto}
}

// get is do for a GET with optional headers given as name, value pairs.
func get(t *testing.T, c *http.Client, port int, host, target string, headers ...string) result {
	t.Helper()
	req := request(t, http.MethodGet, port, host, target)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return do(t, c, req)
}

// raw writes bytes on a fresh connection and parses the one response.
func raw(t *testing.T, port int, payload string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatalf("dial gateway: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, payload); err != nil {
		t.Fatalf("write raw request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", abbreviate(payload), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func abbreviate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// headerValues returns the echo reply's values of a header, by any case.
func headerValues(rep echo.Reply, name string) []string {
	for k, v := range rep.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}
