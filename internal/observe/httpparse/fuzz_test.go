package httpparse

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y HTTP/1.0\r\nContent-Length: 10\r\nUser-Agent: kube-probe/1.30\r\n\r\nbody",
		"GET /cut",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"\x16\x03\x01\x00",
		"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		err := ParseRequest(b, &r)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if r.Method == "" || strings.ContainsAny(r.Method, " \r\n") {
			t.Fatalf("bad method %q", r.Method)
		}
		if r.Target == "" || len(r.Target) > MaxTargetLen || strings.ContainsAny(r.Target, " \r\n") {
			t.Fatalf("bad target %q", r.Target)
		}
		if len(r.Host) > MaxHostLen || len(r.UserAgent) > MaxUserAgentLen {
			t.Fatalf("unbounded header: host %d ua %d", len(r.Host), len(r.UserAgent))
		}
		if r.HeadLen > len(b) || r.HeadersComplete != (r.HeadLen > 0) {
			t.Fatalf("head length %d (complete %v) for %d bytes", r.HeadLen, r.HeadersComplete, len(b))
		}
		if r.ContentLength < -1 {
			t.Fatalf("content length %d", r.ContentLength)
		}
		if !r.TargetTruncated && r.Minor != 0 && r.Minor != 1 {
			t.Fatalf("minor %d for a complete line", r.Minor)
		}
		if !strings.HasPrefix(string(b), r.Method+" "+r.Target) {
			t.Fatalf("method/target %q %q not a prefix of input", r.Method, r.Target)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.0 503\r\n\r\n",
		"HTTP/1.1 404 Not",
		"HTTP/2 200\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Response
		err := ParseResponse(b, &r)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if r.HeadLen > len(b) || r.HeadersComplete != (r.HeadLen > 0) {
			t.Fatalf("head length %d (complete %v) for %d bytes", r.HeadLen, r.HeadersComplete, len(b))
		}
		if r.Status < 100 || r.Status > 599 {
			t.Fatalf("status %d", r.Status)
		}
		if string(b[9:12]) != strings.TrimSpace(string(b[9:12])) || int(b[9]-'0')*100+int(b[10]-'0')*10+int(b[11]-'0') != r.Status {
			t.Fatalf("status %d does not match input %q", r.Status, b[:12])
		}
	})
}
