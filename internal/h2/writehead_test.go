package h2

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"golang.org/x/net/http2/hpack"
)

type field struct{ Name, Value string }

// TestWriteHead: a head given as a list goes out in its order, lower
// case, without connection-specific fields, with a Date only when it has
// none and no sniffed Content-Type; its Content-Length bounds the body.
// Heads the list form does not take write nothing and report false, so
// the handler's WriteHeader still works.
func TestWriteHead(t *testing.T) {
	if *refServer {
		t.Skip("WriteHead is h2.Server's own")
	}
	var mu sync.Mutex
	took := map[string]bool{}      // what WriteHead reported, by path
	writeErr := map[string]error{} // the body write's error, by path
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ok bool
		var werr error
		switch r.URL.Path {
		case "/list":
			ok = WriteHead(w, 201, []field{
				{"X-Mixed-Case", "a"}, {"set-cookie", "1"}, {"connection", "close"}, {"Set-Cookie", "2"},
				{"Transfer-Encoding", "chunked"}, {"KEEP-ALIVE", "5"}, {"content-length", "5"}, {"ETag", `"e"`},
			})
			_, werr = io.WriteString(w, "hello")
		case "/dated":
			ok = WriteHead(w, 200, []field{{"date", "Mon, 01 Jan 2024 00:00:00 GMT"}, {"Content-Encoding", "gzip"}})
			_, werr = io.WriteString(w, "\x1f\x8b")
		case "/long":
			ok = WriteHead(w, 200, []field{{"Content-Length", "5"}})
			_, werr = io.WriteString(w, "hello!")
		case "/trailer":
			ok = WriteHead(w, 200, []field{{"trailer", "X-T"}})
		case "/two-lengths":
			ok = WriteHead(w, 200, []field{{"Content-Length", "5"}, {"Content-Length", "6"}})
		case "/header-set":
			w.Header().Set("X-Pre", "1")
			ok = WriteHead(w, 200, []field{{"X-List", "1"}})
		case "/written":
			w.WriteHeader(202)
			ok = WriteHead(w, 200, []field{{"X-List", "1"}})
		case "/informational":
			ok = WriteHead(w, 103, []field{{"Link", "</a>"}})
		}
		mu.Lock()
		took[r.URL.Path], writeErr[r.URL.Path] = ok, werr
		mu.Unlock()
	})
	ts := startTLS(t, &Server{}, h)
	rc := ts.dialRaw(t)

	rc.request(1, "GET", "/list", true)
	r := rc.one(1)
	want := []hpack.HeaderField{{Name: "x-mixed-case", Value: "a"}, {Name: "set-cookie", Value: "1"},
		{Name: "set-cookie", Value: "2"}, {Name: "content-length", Value: "5"}, {Name: "etag", Value: `"e"`}}
	if r.status != "201" || string(r.body) != "hello" || len(r.fields) != len(want)+1 ||
		!slices.Equal(r.fields[:len(want)], want) || r.fields[len(want)].Name != "date" {
		t.Errorf("/list: %v, fields %v (want %v, a date, no content-type)", r, r.fields, want)
	}

	rc.request(3, "GET", "/dated", true)
	if r := rc.one(3); len(r.header("date")) != 1 || r.header("date")[0] != "Mon, 01 Jan 2024 00:00:00 GMT" ||
		len(r.header("content-type")) != 0 || len(r.header("content-length")) != 1 {
		t.Errorf("/dated: the list's Date only, no content-type, a content-length: %v", r.fields)
	}

	rc.request(5, "GET", "/long", true)
	rc.one(5)

	for i, path := range []string{"/trailer", "/two-lengths", "/header-set", "/written", "/informational"} {
		id := uint32(7 + 2*i)
		rc.request(id, "GET", path, true)
		if r := rc.one(id); r.status == "" || len(r.header("x-list")) != 0 || len(r.header("link")) != 0 {
			t.Errorf("%s: wrote a list head it refused: %v %v", path, r, r.fields)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !took["/list"] || !took["/dated"] || !took["/long"] {
		t.Errorf("WriteHead refused a head it takes: %v", took)
	}
	for _, path := range []string{"/trailer", "/two-lengths", "/header-set", "/written", "/informational"} {
		if took[path] {
			t.Errorf("%s: WriteHead took a head it must leave to WriteHeader", path)
		}
	}
	if writeErr["/list"] != nil || !errors.Is(writeErr["/long"], http.ErrContentLength) {
		t.Errorf("body writes: /list %v, /long %v (want nil, http.ErrContentLength)", writeErr["/list"], writeErr["/long"])
	}
	if WriteHead(httptest.NewRecorder(), 200, []field{{"X", "1"}}) {
		t.Error("WriteHead took another package's ResponseWriter")
	}
}
