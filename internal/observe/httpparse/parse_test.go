package httpparse

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

func TestParseRequest(t *testing.T) {
	longPath := "/" + strings.Repeat("a", 300)
	cases := []struct {
		name string
		in   string
		want Request
		err  error
	}{
		{
			name: "probe",
			in:   "GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: kube-probe/1.36\r\nAccept: */*\r\n\r\n",
			want: Request{Method: "GET", Target: "/healthz", Minor: 1, Host: "10.0.0.1:8080", UserAgent: "kube-probe/1.36", ContentLength: -1, HeadersComplete: true},
		},
		{
			name: "post with body and odd header case",
			in:   "POST /api/v1/items?x=1 HTTP/1.0\r\nhOST:example.com\r\ncontent-LENGTH:  42 \r\n\r\n{\"a\":",
			want: Request{Method: "POST", Target: "/api/v1/items?x=1", Minor: 0, Host: "example.com", ContentLength: 42, HeadersComplete: true},
		},
		{
			name: "bare LF line endings",
			in:   "PUT /x HTTP/1.1\nHost: h\n\n",
			want: Request{Method: "PUT", Target: "/x", Minor: 1, Host: "h", ContentLength: -1, HeadersComplete: true},
		},
		{
			name: "headers cut by capture",
			in:   "GET / HTTP/1.1\r\nHost: a\r\nUser-Ag",
			want: Request{Method: "GET", Target: "/", Minor: 1, Host: "a", ContentLength: -1},
		},
		{
			name: "request line cut inside target",
			in:   "GET /very/long/pa",
			want: Request{Method: "GET", Target: "/very/long/pa", Minor: -1, ContentLength: -1, TargetTruncated: true},
		},
		{
			name: "request line cut inside version",
			in:   "GET /a HTTP/1",
			want: Request{Method: "GET", Target: "/a", Minor: -1, ContentLength: -1, TargetTruncated: true},
		},
		{
			name: "target longer than limit",
			in:   "GET " + longPath + " HTTP/1.1\r\n\r\n",
			want: Request{Method: "GET", Target: longPath[:MaxTargetLen], Minor: 1, ContentLength: -1, TargetTruncated: true, HeadersComplete: true},
		},
		{
			name: "conflicting content lengths are unknown",
			in:   "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
			want: Request{Method: "POST", Target: "/", Minor: 1, ContentLength: -1, HeadersComplete: true},
		},
		{
			name: "repeated equal content lengths",
			in:   "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
			want: Request{Method: "POST", Target: "/", Minor: 1, ContentLength: 3, HeadersComplete: true},
		},
		{
			name: "non-numeric content length",
			in:   "POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
			want: Request{Method: "POST", Target: "/", Minor: 1, ContentLength: -1, HeadersComplete: true},
		},
		{
			name: "asterisk form",
			in:   "OPTIONS * HTTP/1.1\r\n\r\n",
			want: Request{Method: "OPTIONS", Target: "*", Minor: 1, ContentLength: -1, HeadersComplete: true},
		},
		{
			name: "authority form",
			in:   "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
			want: Request{Method: "CONNECT", Target: "example.com:443", Minor: 1, ContentLength: -1, HeadersComplete: true},
		},
		{
			name: "absolute form",
			in:   "GET http://example.com/a HTTP/1.1\r\n\r\n",
			want: Request{Method: "GET", Target: "http://example.com/a", Minor: 1, ContentLength: -1, HeadersComplete: true},
		},
		{name: "empty", in: "", err: ErrMalformed},
		{name: "no space", in: "GET", err: ErrMalformed},
		{name: "HTTP/2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", err: ErrMalformed},
		{name: "TLS", in: "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", err: ErrMalformed},
		{name: "method with slash", in: "GE/T / HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "space in target", in: "GET /a b HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "unknown version", in: "GET / HTTP/1.2\r\n\r\n", err: ErrMalformed},
		{name: "control byte in target", in: "GET /\x01 HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "header without colon", in: "GET / HTTP/1.1\r\nHost\r\n\r\n", err: ErrMalformed},
		{name: "cut right after method", in: "GET ", err: ErrTruncated},
		// Issue 16 point 7: text protocols and body bytes that start with
		// a method word are not requests.
		{name: "memcached get", in: "GET key\r\n", err: ErrMalformed},
		{name: "redis inline", in: "GET user:1000\r\n", err: ErrMalformed},
		{name: "memcached get cut", in: "GET somekey", err: ErrMalformed},
		{name: "prose in a body", in: "GET the milk and eggs\r\n", err: ErrMalformed},
		{name: "prose cut after target", in: "POST office box", err: ErrMalformed},
		{name: "word target with version", in: "GET key HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "asterisk outside OPTIONS", in: "GET * HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "authority outside CONNECT", in: "GET example.com:443 HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "CONNECT without port", in: "CONNECT example.com HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "CONNECT with path", in: "CONNECT example.com:443/x HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "bad scheme", in: "GET 1http://x/ HTTP/1.1\r\n\r\n", err: ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got Request
			if tc.want.HeadersComplete {
				tc.want.HeadLen = headEnd(tc.in)
			}
			err := ParseRequest([]byte(tc.in), &got)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Response
		err  error
	}{
		{name: "ok", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", want: Response{Minor: 1, Status: 200, ContentLength: 5, HeadersComplete: true}},
		{name: "no reason", in: "HTTP/1.0 503\r\n\r\n", want: Response{Minor: 0, Status: 503, ContentLength: -1, HeadersComplete: true}},
		{name: "reason cut", in: "HTTP/1.1 404 Not Fo", want: Response{Minor: 1, Status: 404, ContentLength: -1}},
		{name: "exactly status", in: "HTTP/1.1 101", want: Response{Minor: 1, Status: 101, ContentLength: -1}},
		{name: "cut before status", in: "HTTP/1.1 2", err: ErrTruncated},
		{name: "status out of range", in: "HTTP/1.1 600 X\r\n\r\n", err: ErrMalformed},
		{name: "four digit status", in: "HTTP/1.1 2000 X\r\n\r\n", err: ErrMalformed},
		{name: "letters", in: "HTTP/1.1 2x0 X\r\n\r\n", err: ErrMalformed},
		{name: "HTTP/2", in: "HTTP/2 200\r\n\r\n", err: ErrMalformed},
		{name: "garbage", in: "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", err: ErrMalformed},
		{name: "bad header", in: "HTTP/1.1 200 OK\r\n: x\r\n\r\n", err: ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got Response
			if tc.want.HeadersComplete {
				tc.want.HeadLen = headEnd(tc.in)
			}
			err := ParseResponse([]byte(tc.in), &got)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// headEnd is where the head of s ends (after its blank line).
func headEnd(s string) int {
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		return i + 4
	}
	return strings.Index(s, "\n\n") + 2
}

func TestBodyLen(t *testing.T) {
	cases := []struct {
		in   string
		head bool
		n    int64
		ok   bool
	}{
		{"GET / HTTP/1.1\r\n\r\n", false, 0, true},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", false, 5, true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 0, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", false, 0, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false, 3, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true, 0, true},
		{"HTTP/1.1 204 No Content\r\n\r\n", false, 0, true},
		{"HTTP/1.1 200 OK\r\n\r\n", false, 0, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0, false},
	}
	for _, tc := range cases {
		var n int64
		var ok bool
		if strings.HasPrefix(tc.in, "HTTP/") {
			var r Response
			if err := ParseResponse([]byte(tc.in), &r); err != nil {
				t.Fatal(err)
			}
			n, ok = r.BodyLen(tc.head)
		} else {
			var r Request
			if err := ParseRequest([]byte(tc.in), &r); err != nil {
				t.Fatal(err)
			}
			n, ok = r.BodyLen()
		}
		if n != tc.n || ok != tc.ok {
			t.Errorf("%q head=%v: BodyLen = %d, %v; want %d, %v", tc.in, tc.head, n, ok, tc.n, tc.ok)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	in := []byte("GET /api/v1/users/123 HTTP/1.1\r\nHost: svc.ns.svc.cluster.local\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n")
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseRequest(in, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n\r\n")
	var r Response
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseResponse(in, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestInternerSameResultsBoundedAndNoAllocs: interned parsing gives the
// same Request as plain parsing, reuses one string per value, stays within
// its bound, and allocates nothing for values it already holds.
func TestInternerSameResultsBoundedAndNoAllocs(t *testing.T) {
	in := NewInterner(3)
	heads := []string{
		"GET /a HTTP/1.1\r\nHost: one\r\nUser-Agent: kube-probe/1.36\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: one\r\nUser-Agent: kube-probe/1.36\r\n\r\n",
		"POST /very/long/target?q=1 HTTP/1.1\r\nHost: two\r\nContent-Length: 3\r\n\r\nabc",
		"GET /cut-in-the-targ",
	}
	for _, h := range heads {
		var plain, interned Request
		perr, ierr := ParseRequest([]byte(h), &plain), in.ParseRequest([]byte(h), &interned)
		if (perr == nil) != (ierr == nil) || plain != interned {
			t.Fatalf("%q: interned %+v (%v), plain %+v (%v)", h, interned, ierr, plain, perr)
		}
		if in.Len() > 3 {
			t.Fatalf("interner holds %d values, bound is 3", in.Len())
		}
	}

	in = NewInterner(16)
	head := []byte(heads[0])
	var a, b Request
	if err := in.ParseRequest(head, &a); err != nil {
		t.Fatal(err)
	}
	if err := in.ParseRequest(head, &b); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(a.Host) != unsafe.StringData(b.Host) || unsafe.StringData(a.Target) != unsafe.StringData(b.Target) {
		t.Fatal("the same values were not shared")
	}
	if n := testing.AllocsPerRun(100, func() { _ = in.ParseRequest(head, &b) }); n != 0 {
		t.Fatalf("%v allocations per parse of known values, want 0", n)
	}
}

// TestChunkedBodyCapturedWhole: a chunked body that lies entirely in the
// capture has a known length (the next response in the segment starts
// after it); one cut by the capture, or with trailers, does not.
func TestChunkedBodyCapturedWhole(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		body string
		n    int64
		ok   bool
	}{
		{"5\r\nhello\r\n0\r\n\r\n", 15, true},
		{"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", 36, true},
		{"0\r\n\r\n", 5, true},
		{"5\r\nhello\r\n0\r\n", 0, false},               // cut before the end
		{"5\r\nhel", 0, false},                          // chunk cut
		{"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", 0, false}, // trailers
		{"zz\r\nhello\r\n0\r\n\r\n", 0, false},          // not hex
		{"5\r\nhelloXX0\r\n\r\n", 0, false},             // no CRLF after data
	} {
		var r Response
		if err := ParseResponse([]byte(head+tc.body), &r); err != nil {
			t.Fatalf("%q: %v", tc.body, err)
		}
		n, ok := r.BodyLen(false)
		if ok != tc.ok || (ok && n != tc.n) {
			t.Errorf("%q: body length %d %v, want %d %v", tc.body, n, ok, tc.n, tc.ok)
		}
	}
}
