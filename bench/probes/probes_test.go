package main

import (
	"strconv"
	"testing"
)

// TestRequestLinesFramesLikeTheBackend: a request inside a body framed by
// Content-Length is body, not a request (nginx forwards an HTTP/2 body
// holding a request line this way); after a chunked end it is a request.
func TestRequestLinesFramesLikeTheBackend(t *testing.T) {
	w := newWire()
	inBody := w.conn()
	body := "0\r\n\r\nGET /api/tok-smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	w.add(inBody, []byte("POST /api/tok/x HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body))
	if got := w.requestLines("tok-smuggled"); len(got) != 0 {
		t.Fatalf("request in a Content-Length body counted: %q", got)
	}
	if got := w.requestLines("tok/x"); len(got) != 1 || got[0] != "POST /api/tok/x HTTP/1.1" {
		t.Fatalf("request lines %q, want the POST", got)
	}
	desync := w.conn()
	w.add(desync, []byte("POST /api/tok/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+body))
	if got := w.requestLines("tok-smuggled"); len(got) != 1 {
		t.Fatalf("smuggled request after a chunked end: %q, want one", got)
	}
	w.reset()
	if got := w.requestLines("tok"); len(got) != 0 {
		t.Fatalf("after reset: %q", got)
	}
}

// TestResolveLeavesPrefix: the lenient reading a backend may give a path.
func TestResolveLeavesPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"/api/x":              "/api/x",
		"/api/../secret":      "/secret",
		"/api/%2e%2e/s":       "/s",
		"/api/..%2Fsecret":    "/secret",
		"/api//../secret":     "/secret",
		`/api/..\secret`:      "/secret",
		"/api/a/../b?q=../..": "/api/b",
	} {
		if got := resolve(in); got != want {
			t.Errorf("resolve(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatusLines(t *testing.T) {
	first, n := statusLines([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 408 Request Timeout\r\nX: HTTP/1.1 200\r\n\r\n"))
	if first != 100 || n != 2 {
		t.Fatalf("statusLines = %d, %d; want 100, 2", first, n)
	}
	if first, n := statusLines([]byte("echo GET /x\n")); first != 0 || n != 0 {
		t.Fatalf("HTTP/0.9 body read as %d, %d", first, n)
	}
}

func TestCrashIndex(t *testing.T) {
	for log, want := range map[string]int{
		"": -1,
		"level=WARN msg=\"request head timed out\"\n":               -1,
		"x\npanic: runtime error: index out of range":               2,
		"fatal error: concurrent map writes":                        0,
		"level=ERROR msg=\"http: panic serving 127.0.0.1:1: boom\"": 23,
	} {
		if got := crashIndex(log); got != want {
			t.Errorf("crashIndex(%q) = %d, want %d", log, got, want)
		}
	}
}
