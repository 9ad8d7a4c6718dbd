package h2

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"

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
