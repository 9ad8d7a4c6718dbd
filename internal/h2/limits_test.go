package h2

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestPathForm: :path is the origin form, or "*" for OPTIONS only (RFC
// 9113 8.3.1). Issue 14: an absolute :path (http://evil.example/api) was
// served, handing routing an authority that :authority does not have.
func TestPathForm(t *testing.T) {
	var calls atomic.Int32
	ts := startCleartext(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Host)
	}))
	rc := ts.dialRaw(t)
	id := uint32(1)
	for _, c := range []struct {
		method, path string
		body         string // "" means malformed: RST_STREAM PROTOCOL_ERROR
	}{
		{"GET", "http://evil.example/api", ""},
		{"GET", "https://evil.example", ""},
		{"GET", "//evil.example/api", "GET //evil.example/api example.test"},
		{"GET", "api", ""},
		{"GET", "*", ""},
		{"OPTIONS", "*", "OPTIONS * example.test"},
		{"OPTIONS", "/x", "OPTIONS /x example.test"},
		{"GET", "/api?q=1", "GET /api example.test"},
	} {
		calls.Store(0)
		rc.request(id, c.method, c.path, true)
		r := rc.one(id)
		id += 2
		if c.body == "" {
			if !r.reset || r.code != http2.ErrCodeProtocol || calls.Load() != 0 {
				t.Errorf("%s %q: %v body %q, handler called %d times; want RST_STREAM PROTOCOL_ERROR", c.method, c.path, r, r.body, calls.Load())
			}
			continue
		}
		if r.status != "200" || string(r.body) != c.body {
			t.Errorf("%s %q: %v body %q, want 200 %q", c.method, c.path, r, r.body, c.body)
		}
	}
}

// sendBlock sends a header block as HEADERS and CONTINUATION frames of at
// most frame bytes each.
func (rc *rawClient) sendBlock(id uint32, endStream bool, block []byte, frame int) {
	rc.t.Helper()
	first := true
	for {
		n := min(len(block), frame)
		frag, end := block[:n], n == len(block)
		block = block[n:]
		if first {
			rc.write(func() error {
				return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: end})
			})
			first = false
		} else {
			rc.write(func() error { return rc.fr.WriteContinuation(id, end, frag) })
		}
		if end {
			return
		}
	}
}

// fields returns n header fields x-field-<i>: v<i>.
func fields(n int) []string {
	kv := make([]string, 0, 2*n)
	for i := range n {
		kv = append(kv, fmt.Sprintf("x-field-%d", i), fmt.Sprintf("v%d", i))
	}
	return kv
}

// TestHeaderLimits: a request with more than Limits.MaxHeaderFields (100)
// fields or a header list over MaxHeaderBytes (64 KiB) is answered 431
// without running the handler, and the connection stays usable (the
// refused block was decoded, so the HPACK state holds). Issue 14: a 64 KiB
// header block and 10,000 header fields must get 431 (Envoy: 60 KiB, 100
// fields).
func TestHeaderLimits(t *testing.T) {
	var calls atomic.Int32
	ts := startCleartext(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprintf(w, "%d fields", len(r.Header))
	}))
	rc := ts.dialRaw(t)
	if v := rc.settings[http2.SettingMaxHeaderListSize]; v != 64<<10 {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d, want %d", v, 64<<10)
	}
	id := uint32(1)
	for _, c := range []struct {
		name  string
		extra []string
		want  string // status
	}{
		{"100 fields", fields(100), "200"},
		{"101 fields", fields(101), "431"},
		{"10,000 fields", fields(10000), "431"},
		{"a 64 KiB field", []string{"x-big", strings.Repeat("a", 64<<10)}, "431"},
		{"a 100 KiB field", []string{"x-big", strings.Repeat("a", 100<<10)}, "431"},
		{"64 KiB in 32 fields", func() []string {
			var kv []string
			for i := range 32 {
				kv = append(kv, fmt.Sprintf("x-big-%d", i), strings.Repeat("b", 2<<10))
			}
			return kv
		}(), "431"},
		{"60 KiB in 30 fields", func() []string {
			var kv []string
			for i := range 30 {
				kv = append(kv, fmt.Sprintf("x-big-%d", i), strings.Repeat("c", 2<<10-64))
			}
			return kv
		}(), "200"},
	} {
		calls.Store(0)
		kv := append([]string{":method", "GET", ":scheme", "https", ":authority", "example.test", ":path", "/"}, c.extra...)
		rc.sendBlock(id, true, rc.encode(kv...), 16<<10)
		r := rc.one(id)
		if r.status != c.want {
			t.Errorf("%s: %v, want status %s", c.name, r, c.want)
		}
		if c.want == "431" && calls.Load() != 0 {
			t.Errorf("%s: handler called", c.name)
		}
		id += 2
		// The next request on the connection is served: the refused
		// block's HPACK entries were kept.
		rc.request(id, "GET", "/", true, "x-field-1", "v1", "x-big", strings.Repeat("a", 10))
		if r := rc.one(id); r.status != "200" || string(r.body) != "2 fields" {
			t.Errorf("after %s: %v body %q, want 200 \"2 fields\"", c.name, r, r.body)
		}
		id += 2
	}
}

// TestContinuationFrames: a header block may span Limits.MaxContinuationFrames
// (24) CONTINUATION frames; one more ends the connection with GOAWAY
// ENHANCE_YOUR_CALM, as the HPACK state cannot be kept without decoding
// the rest (issue 14, CVE-2023-45288: x/net bounds a block's bytes, not its
// frames).
func TestContinuationFrames(t *testing.T) {
	ts := startCleartext(t, &Server{}, http.HandlerFunc(echoHandler))
	for _, n := range []int{24, 25} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rc := ts.dialRaw(t)
			block := rc.encode(":method", "GET", ":scheme", "https", ":authority", "example.test", ":path", "/",
				"x-pad", strings.Repeat("p", 2000))
			frame := (len(block) + n) / (n + 1)
			if got := (len(block) + frame - 1) / frame; got != n+1 {
				t.Fatalf("a %d-byte block in %d-byte frames is %d frames, want %d", len(block), frame, got, n+1)
			}
			rc.sendBlock(1, true, block, frame)
			if n <= 24 {
				if r := rc.one(1); r.status != "200" {
					t.Errorf("%d CONTINUATION frames: %v", n, r)
				}
				return
			}
			ga, closed := rc.waitClosed(5 * time.Second)
			if ga == nil || ga.ErrCode != http2.ErrCodeEnhanceYourCalm || !closed {
				t.Errorf("%d CONTINUATION frames: GOAWAY %v, closed %v; want ENHANCE_YOUR_CALM and closed", n, ga, closed)
			}
		})
	}
}
