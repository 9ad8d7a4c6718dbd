package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// smuggled is the request a desync would make the backend see on its own.
const smuggled = "GET /api/TOK-smuggled HTTP/1.1\r\nHost: probes\r\n\r\n"

// h1Wait bounds how long a parsing probe waits for the proxy's answer: far
// below every timeout, far above a loopback round trip.
const h1Wait = 3 * time.Second

func h1Probes() []probe {
	return []probe{
		{name: "h1-baseline", group: "HTTP/1.1 parsing and smuggling", pass: "200 from the backend",
			run: func(ctx context.Context, t *target) result {
				r := t.h1Exchange(ctx, []byte(t.path("GET /api/TOK/x HTTP/1.1\r\nHost: probes\r\nConnection: close\r\n\r\n")), h1Wait)
				return passIf(r.status == 200 && len(t.be.w.requestLines(t.tok)) == 1, "%s", r)
			}},
		smuggle("h1-cl-te", "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", chunkedSmuggle),
		smuggle("h1-te-cl", "Transfer-Encoding: chunked\r\nContent-Length: %d\r\n", chunkedSmuggle),
		smuggle("h1-te-obs-fold", "Content-Length: %d\r\nTransfer-Encoding:\r\n chunked\r\n", chunkedSmuggle),
		smuggle("h1-te-odd-case", "Content-Length: %d\r\nTransfer-Encoding: ChUnKeD\r\n", chunkedSmuggle),
		smuggle("h1-te-space-before-colon", "Content-Length: %d\r\nTransfer-Encoding : chunked\r\n", chunkedSmuggle),
		smuggle("h1-te-chunked-identity", "Content-Length: %d\r\nTransfer-Encoding: chunked, identity\r\n", chunkedSmuggle),
		smuggle("h1-te-unknown", "Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n", chunkedSmuggle),
		smuggle("h1-te-vertical-tab", "Content-Length: %d\r\nTransfer-Encoding:\x0bchunked\r\n", chunkedSmuggle),
		smuggle("h1-dup-cl", "Content-Length: 0\r\nContent-Length: %d\r\n", func() string { return smuggled }),
		smuggle("h1-cl-list", "Content-Length: 0, %d\r\n", func() string { return smuggled }),
		smuggle("h1-cl-plus", "Content-Length: +%d\r\n", func() string { return smuggled }),
		smuggle("h1-dup-cl-then-te", "Content-Length: %[1]d\r\nContent-Length: %[1]d\r\nTransfer-Encoding: chunked\r\n", chunkedSmuggle),
		smuggle("h1-cl-bare-lf-te", "Content-Length: %d\nTransfer-Encoding: chunked\r\n", chunkedSmuggle),
		chunkProbe("h1-chunk-size-overflow", "10000000000000000000000000003\r\nabc\r\n0\r\n\r\n", "10000000000000000000000000003"),
		chunkProbe("h1-chunk-size-0x", "0x3\r\nabc\r\n0\r\n\r\n", "0x3"),
		chunkProbe("h1-chunk-size-negative", "-3\r\nabc\r\n0\r\n\r\n", "-3"),
		chunkProbe("h1-chunk-bare-lf", "3\nabc\n0\n\n", "3\nabc"),
		chunkProbe("h1-chunk-ext-nul", "3;a\x00b\r\nabc\r\n0\r\n\r\n", "\x00"),
		chunkProbe("h1-chunk-data-overrun", "3\r\nabcdef\r\n0\r\n\r\n", "abcdef"),
		{name: "h1-chunk-ext-64k", group: "HTTP/1.1 parsing and smuggling", pass: "refused (4xx/5xx or a close), not forwarded: a 64 KiB chunk extension is not read without bound",
			run: func(ctx context.Context, t *target) result {
				req := t.path("POST /api/TOK/x HTTP/1.1\r\nHost: probes\r\nTransfer-Encoding: chunked\r\n\r\n3;x=" + strings.Repeat("a", 64<<10) + "\r\nabc\r\n0\r\n\r\n")
				r := t.h1Exchange(ctx, []byte(req), h1Wait)
				fwd := strings.Contains(string(t.be.w.bytes()), strings.Repeat("a", 64<<10))
				return passIf(!fwd && (r.status >= 400 || r.status == 0 && r.closed), "%s; forwarded: %v", r, fwd)
			}},
		{name: "h1-bare-lf-head", group: "HTTP/1.1 parsing and smuggling", pass: "400, or forwarded with CRLF line ends only",
			run: func(ctx context.Context, t *target) result {
				r := t.h1Exchange(ctx, []byte(t.path("GET /api/TOK/x HTTP/1.1\nHost: probes\nX-Probe: 1\nConnection: close\n\n")), h1Wait)
				bare := false
				for _, h := range t.be.w.heads(t.tok) {
					if strings.Contains(strings.ReplaceAll(h, "\r\n", ""), "\n") {
						bare = true
					}
				}
				return passIf(r.status == 400 || !bare && r.status == 200, "%s; bare LF forwarded: %v", r, bare)
			}},
		fieldProbe("h1-nul-in-value", "X-Probe: a\x00b\r\n", "\x00"),
		fieldProbe("h1-cr-in-value", "X-Probe: a\rb\r\n", "a\rb"),
		fieldProbe("h1-ctl-in-value", "X-Probe: a\x01b\r\n", "\x01"),
		fieldProbe("h1-space-before-colon", "X-Probe : 1\r\n", "X-Probe :"),
		fieldProbe("h1-obs-fold", "X-Probe: a\r\n b\r\n", "\r\n b"),
		rejectProbe("h1-http09", "GET /api/TOK/x\r\n\r\n", "no HTTP/0.9 answer (a 4xx status line or a close) and nothing forwarded", true),
		rejectProbe("h1-invalid-method", "G(T /api/TOK/x HTTP/1.1\r\nHost: probes\r\n\r\n", "400, nothing forwarded", false),
		rejectProbe("h1-bad-version", "GET /api/TOK/x HTTP/3.0\r\nHost: probes\r\n\r\n", "4xx or 505, nothing forwarded", false),
		rejectProbe("h1-no-host", "GET /api/TOK/x HTTP/1.1\r\nX-Probe: 1\r\n\r\n", "400 (RFC 9112 3.2), nothing forwarded", false),
		rejectProbe("h1-two-hosts", "GET /api/TOK/x HTTP/1.1\r\nHost: probes\r\nHost: evil.example\r\n\r\n", "400 (RFC 9112 3.2), nothing forwarded", false),
		{name: "h1-absolute-form", group: "HTTP/1.1 parsing and smuggling", pass: "400, or forwarded in origin form (never the absolute URI)",
			run: func(ctx context.Context, t *target) result {
				r := t.h1Exchange(ctx, []byte(t.path("GET http://evil.example/api/TOK/x HTTP/1.1\r\nHost: probes\r\nConnection: close\r\n\r\n")), h1Wait)
				lines := t.be.w.requestLines(t.tok)
				abs := false
				for _, l := range lines {
					if strings.Contains(l, "://") {
						abs = true
					}
				}
				return passIf(r.status == 400 || r.status == 200 && len(lines) == 1 && !abs, "%s; backend saw %q", r, lines)
			}},
	}
}

// chunkedSmuggle is a chunked body that ends at once, followed by a second
// request: a proxy that frames by Content-Length forwards it as body, one
// that frames by chunked must then close (RFC 9112 6.1).
func chunkedSmuggle() string { return "0\r\n\r\n" + smuggled }

// smuggle sends a POST whose framing fields are fields (with %d the body
// length) and whose body is body(). Safe: the smuggled request never reaches
// the backend and the proxy rejects the request or closes the connection
// after answering.
func smuggle(name, fields string, body func() string) probe {
	return probe{name: name, group: "HTTP/1.1 parsing and smuggling",
		pass: "the smuggled request never reaches the backend; 4xx/501, or a close after the answer",
		run: func(ctx context.Context, t *target) result {
			b := t.path(body())
			head := t.path("POST /api/TOK/x HTTP/1.1\r\nHost: probes\r\n")
			head += fmt.Sprintf(fields, len(b))
			r := t.h1Exchange(ctx, []byte(head+"\r\n"+b), h1Wait)
			got := t.be.w.requestLines(t.tok + "-smuggled")
			rejected := r.status >= 400 && r.status < 500 || r.status == 501
			ok := len(got) == 0 && (rejected || r.closed) && r.responses <= 1
			return passIf(ok, "%s; smuggled at backend: %d", r, len(got))
		}}
}

// chunkProbe sends a chunked POST whose body is malformed. Safe: refused
// (4xx/5xx or a close), or the malformed bytes (marker) are not forwarded
// as sent (the proxy re-framed the body).
func chunkProbe(name, body, marker string) probe {
	return probe{name: name, group: "HTTP/1.1 parsing and smuggling", pass: "refused (4xx/5xx or a close), or the malformed chunk never forwarded as sent",
		run: func(ctx context.Context, t *target) result {
			r := t.h1Exchange(ctx, []byte(t.path("POST /api/TOK/x HTTP/1.1\r\nHost: probes\r\nTransfer-Encoding: chunked\r\n\r\n"+body)), h1Wait)
			fwd := strings.Contains(string(t.be.w.bytes()), marker)
			refused := r.status >= 400 || r.status == 0 && r.closed
			return passIf(!fwd && (refused || r.status == 200), "%s; forwarded as sent: %v", r, fwd)
		}}
}

// fieldProbe sends a GET with one malformed field. Safe: 400, or the
// malformed bytes (marker) never reach the backend.
func fieldProbe(name, field, marker string) probe {
	return probe{name: name, group: "HTTP/1.1 parsing and smuggling", pass: "400, or the field is not forwarded as sent",
		run: func(ctx context.Context, t *target) result {
			r := t.h1Exchange(ctx, []byte(t.path("GET /api/TOK/x HTTP/1.1\r\nHost: probes\r\n"+field+"Connection: close\r\n\r\n")), h1Wait)
			fwd := false
			for _, h := range t.be.w.heads(t.tok) {
				if strings.Contains(h, marker) {
					fwd = true
				}
			}
			return passIf(!fwd && (r.status == 400 || r.status == 200), "%s; forwarded as sent: %v", r, fwd)
		}}
}

// rejectProbe sends raw and expects a 4xx/505 (or, with closeOK, a close
// without any byte) and nothing at the backend.
func rejectProbe(name, raw, pass string, closeOK bool) probe {
	return probe{name: name, group: "HTTP/1.1 parsing and smuggling", pass: pass,
		run: func(ctx context.Context, t *target) result {
			r := t.h1Exchange(ctx, []byte(t.path(raw)), h1Wait)
			n := len(t.be.w.requestLines(t.tok))
			ok := n == 0 && (r.status >= 400 && r.status < 500 || r.status == 505 || closeOK && r.closed && len(r.data) == 0)
			return passIf(ok, "%s; forwarded: %d", r, n)
		}}
}
