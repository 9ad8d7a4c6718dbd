package upstream

import (
	"testing"
	"unsafe"

	"github.com/false-systems/rauta/internal/h1"
)

// AppendHead writes the framing from ContentLength alone: Content-Length,
// Transfer-Encoding, Trailer and Host fields (in any case) are left out,
// whatever a filter put in Fields; an empty POST says Content-Length: 0,
// an empty GET nothing; the query follows a '?' also when empty but asked
// for.
func TestRequestAppendHead(t *testing.T) {
	framing := h1.Fields{
		{Name: "X-A", Value: "1"}, {Name: "content-length", Value: "0"}, {Name: "Transfer-Encoding", Value: "chunked"},
		{Name: "TRAILER", Value: "X-T"}, {Name: "host", Value: "evil"}, {Name: "X-B", Value: "2"},
	}
	for _, tc := range []struct {
		name string
		r    Request
		want string
	}{
		{"framing fields dropped", Request{Method: "POST", Path: "/up", Host: "b", Fields: framing, ContentLength: 36},
			"POST /up HTTP/1.1\r\nHost: b\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 36\r\n\r\n"},
		{"empty POST", Request{Method: "POST", Path: "/", Host: "b"},
			"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n"},
		{"GET with query", Request{Method: "GET", Path: "/a%2Fb", Query: "x=1", Host: "b"},
			"GET /a%2Fb?x=1 HTTP/1.1\r\nHost: b\r\n\r\n"},
		{"empty query kept", Request{Method: "GET", Path: "/", ForceQuery: true, Host: "b"},
			"GET /? HTTP/1.1\r\nHost: b\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.r.AppendHead(nil)); got != tc.want {
				t.Errorf("head\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// A Clone keeps the request whole after the buffer its strings viewed is
// overwritten, and writes the same head.
func TestRequestClone(t *testing.T) {
	buf := []byte("POST/a/b?x=1hostX-One1x-twotwo")
	view := func(i, j int) string { return unsafe.String(&buf[i], j-i) }
	r := Request{Method: view(0, 4), Path: view(4, 8), Query: view(9, 12), Host: view(12, 16),
		Fields: h1.Fields{{Name: view(16, 21), Value: view(21, 22)}, {Name: view(22, 27), Value: view(27, 30)}}, ContentLength: 4}
	want := string(r.AppendHead(nil))
	c := r.Clone()
	for i := range buf {
		buf[i] = '#'
	}
	if got := string(c.AppendHead(nil)); got != want {
		t.Errorf("clone's head after the buffer changed:\n%q\nwant\n%q", got, want)
	}
	if len(c.Fields) != 2 || c.ContentLength != 4 {
		t.Errorf("clone %+v", c)
	}
}
