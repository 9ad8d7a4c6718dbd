package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"
	"time"
)

func limitProbes() []probe {
	g := "request limits"
	return []probe{
		limitProbe("h1-header-64k", g, func(t *target) string {
			return "X-Big: " + strings.Repeat("a", 64<<10) + "\r\n"
		}),
		limitProbe("h1-10000-fields", g, func(t *target) string {
			var b strings.Builder
			for i := range 10000 {
				fmt.Fprintf(&b, "X-%d: 1\r\n", i)
			}
			return b.String()
		}),
		{name: "h1-uri-1m", group: g, pass: "414 (or 400/431), not forwarded, not a reset without an answer",
			run: func(ctx context.Context, t *target) result {
				req := t.path("GET /api/TOK/" + strings.Repeat("u", 1<<20) + " HTTP/1.1\r\nHost: probes\r\n\r\n")
				r := t.h1Exchange(ctx, []byte(req), h1Wait)
				n := len(t.be.w.requestLines(t.tok))
				return passIf(n == 0 && (r.status == 414 || r.status == 400 || r.status == 431), "%s; forwarded: %d", r, n)
			}},
	}
}

// limitProbe sends a GET with the extra fields; 431 or 400, not forwarded,
// answered rather than reset.
func limitProbe(name, group string, fields func(t *target) string) probe {
	return probe{name: name, group: group, pass: "431 or 400, not forwarded, not a reset without an answer",
		run: func(ctx context.Context, t *target) result {
			req := t.path("GET /api/TOK/x HTTP/1.1\r\nHost: probes\r\n") + fields(t) + "\r\n"
			r := t.h1Exchange(ctx, []byte(req), h1Wait)
			n := len(t.be.w.requestLines(t.tok))
			return passIf(n == 0 && (r.status == 431 || r.status == 400), "%s; forwarded: %d", r, n)
		}}
}

func pathProbes() []probe {
	return []probe{
		pathProbe("path-dot-dot", "/api/../secret-TOK"),
		pathProbe("path-encoded-dot-dot", "/api/%2e%2e/secret-TOK"),
		pathProbe("path-encoded-slash", "/api/..%2fsecret-TOK"),
		pathProbe("path-double-slash", "/api//../secret-TOK"),
		pathProbe("path-backslash", "/api/..\\secret-TOK"),
	}
}

// pathProbe sends a path that leaves /api/ once resolved. Judged by what
// the /api/ backend receives: a path that, with %2e, %2f and backslashes
// decoded, repeated slashes merged and dot-segments removed (what a
// backend's framework may do), is still under /api/ — or nothing.
func pathProbe(name, p string) probe {
	return probe{name: name, group: "path normalisation", pass: "the /api/ backend never gets a path that resolves outside /api/",
		run: func(ctx context.Context, t *target) result {
			r := t.h1Exchange(ctx, []byte(t.path("GET "+p+" HTTP/1.1\r\nHost: probes\r\nConnection: close\r\n\r\n")), h1Wait)
			var escaped []string
			lines := t.be.w.requestLines(t.tok)
			for _, l := range lines {
				target := strings.Fields(l)[1]
				if !strings.HasPrefix(resolve(target), "/api/") {
					escaped = append(escaped, target)
				}
			}
			return passIf(len(escaped) == 0, "%s; backend got %q", r, targets(lines))
		}}
}

func targets(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, strings.Fields(l)[1])
	}
	return out
}

// resolve is the most lenient reading a backend may give a path.
func resolve(target string) string {
	p, _, _ := strings.Cut(target, "?")
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	p = strings.ReplaceAll(p, `\`, "/")
	return path.Clean(p)
}

// within is the pass bound of a stall probe: the configured timeout plus
// half of it and a second for scheduling.
func (t *target) within() time.Duration { return t.timeout + t.timeout/2 + time.Second }

func stallProbes() []probe {
	g := "stalls and timeouts"
	return []probe{
		{name: "slowloris-head", group: g, pass: "408 or closed within the timeout (+50 %), a field line every second",
			run: func(ctx context.Context, t *target) result {
				c, err := net.Dial("tcp", t.h1)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.Close()
				start := time.Now()
				_, _ = io.WriteString(c, t.path("GET /api/TOK/x HTTP/1.1\r\nHost: probes\r\n"))
				done := make(chan h1Result, 1)
				go func() { done <- readAll(c, start, 3*t.timeout) }()
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case r := <-done:
						return passIf((r.closed || r.status == 408) && r.elapsed <= t.within(), "%s", r)
					case <-tick.C:
						_ = c.SetWriteDeadline(time.Now().Add(time.Second))
						_, _ = fmt.Fprintf(c, "X-%d: a\r\n", i)
					}
				}
			}},
		stallProbe("slow-body", g, "POST /api/TOK/x HTTP/1.1\r\nHost: probes\r\nContent-Length: 1000\r\n\r\n0123456789"),
		{name: "slow-body-x100", group: g, pass: "100 connections with a stalled body: every one answered 4xx/5xx or closed within the timeout (+50 %)",
			run: func(ctx context.Context, t *target) result {
				res := make(chan h1Result, 100)
				start := time.Now()
				for i := range 100 {
					go func() {
						c, err := net.Dial("tcp", t.h1)
						if err != nil {
							res <- h1Result{err: err}
							return
						}
						defer c.Close()
						_, _ = io.WriteString(c, t.path(fmt.Sprintf("POST /api/TOK/%d HTTP/1.1\r\nHost: probes\r\nContent-Length: 1000\r\n\r\n0123456789", i)))
						res <- readAll(c, start, 3*t.timeout)
					}()
				}
				cut, worst := 0, time.Duration(0)
				for range 100 {
					r := <-res
					if (r.closed || r.status >= 400) && r.status != 200 {
						cut++
					}
					worst = max(worst, r.elapsed)
				}
				return passIf(cut == 100 && worst <= t.within(), "%d of 100 cut, the last after %s", cut, fmtDur(worst))
			}},
		stallProbe("expect-100-no-body", g, "POST /api/TOK/x HTTP/1.1\r\nHost: probes\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"),
		{name: "idle-keepalive", group: g, pass: "idle keep-alive connection closed within the timeout (+50 %)",
			run: func(ctx context.Context, t *target) result {
				c, err := net.Dial("tcp", t.h1)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.Close()
				_, _ = io.WriteString(c, t.path("GET /api/TOK/x HTTP/1.1\r\nHost: probes\r\n\r\n"))
				// Read the answer, then time from there.
				_ = c.SetReadDeadline(time.Now().Add(h1Wait))
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				if st, _ := statusLines(buf[:n]); st != 200 {
					return passIf(false, "first request: %q", buf[:min(n, 40)])
				}
				r := readAll(c, time.Now(), 3*t.timeout)
				return passIf(r.closed && r.elapsed <= t.within(), "%s after the response", r)
			}},
		{name: "backend-never-answers", group: g, pass: "504 within the timeout (+50 %)",
			run: func(ctx context.Context, t *target) result {
				r := t.h1Exchange(ctx, []byte(t.path("GET /slow/TOK HTTP/1.1\r\nHost: probes\r\nConnection: close\r\n\r\n")), 3*t.timeout)
				return passIf(r.status == 504 && r.elapsed <= t.within(), "%s", r)
			}},
		{name: "client-gone-while-waiting", group: g, pass: "backend exchange aborted within 2 s of the client closing",
			run: func(ctx context.Context, t *target) result {
				c, err := net.Dial("tcp", t.h1)
				if err != nil {
					return passIf(false, "%v", err)
				}
				_, _ = io.WriteString(c, t.path("GET /slow/TOK HTTP/1.1\r\nHost: probes\r\n\r\n"))
				time.Sleep(500 * time.Millisecond)
				closed := time.Now()
				c.Close()
				return t.awaitSlowGone(ctx, closed, "the client closed")
			}},
	}
}

// awaitSlowGone waits for the never-answering backend's request of this
// probe to end; it must end within 2 s of since.
func (t *target) awaitSlowGone(ctx context.Context, since time.Time, what string) result {
	limit := time.After(3 * t.timeout)
	for {
		select {
		case g := <-t.be.w.slowGone:
			if !strings.Contains(g.path, t.tok) {
				continue // an earlier probe's request
			}
			d := g.at.Sub(since)
			return passIf(d <= 2*time.Second, "backend request ended %s after %s", fmtDur(d), what)
		case <-limit:
			return passIf(false, "backend request still open %s after %s", fmtDur(3*t.timeout), what)
		case <-ctx.Done():
			return passIf(false, "%v", ctx.Err())
		}
	}
}

// stallProbe sends a request head and stops; the proxy must answer 408 or
// close within the timeout (+50 %). 1xx answers are not an end.
func stallProbe(name, group, raw string) probe {
	return probe{name: name, group: group, pass: "4xx/5xx or closed within the timeout (+50 %)",
		run: func(ctx context.Context, t *target) result {
			c, err := net.Dial("tcp", t.h1)
			if err != nil {
				return passIf(false, "%v", err)
			}
			defer c.Close()
			start := time.Now()
			_, _ = io.WriteString(c, t.path(raw))
			r := readAll(c, start, 3*t.timeout)
			final := r.status
			if final == 100 && r.responses > 1 {
				i := strings.Index(string(r.data), "\r\n\r\n")
				final, _ = statusLines(r.data[i+4:])
			}
			ok := (r.closed || final >= 400) && final != 200 && r.elapsed <= t.within()
			return passIf(ok, "%s", r)
		}}
}

func backendProbes() []probe {
	g := "backend faults"
	get := func(t *target, ctx context.Context, p string) h1Result {
		return t.h1Exchange(ctx, []byte(t.path("GET "+p+" HTTP/1.1\r\nHost: probes\r\nConnection: close\r\n\r\n")), 2*t.timeout)
	}
	return []probe{
		{name: "backend-reset", group: g, pass: "502 (or 503)",
			run: func(ctx context.Context, t *target) result {
				r := get(t, ctx, "/reset/TOK")
				return passIf(r.status == 502 || r.status == 503, "%s", r)
			}},
		{name: "backend-reset-mid-body", group: g, pass: "the client sees a truncated response: short body and a close, or 502",
			run: func(ctx context.Context, t *target) result {
				r := get(t, ctx, "/resetbody/TOK")
				i := strings.Index(string(r.data), "\r\n\r\n")
				body := 0
				if i >= 0 {
					body = len(r.data) - i - 4
				}
				ok := r.status == 502 || r.status == 200 && r.closed && body < 100000 && !strings.Contains(string(r.data), "\r\n0\r\n\r\n")
				return passIf(ok, "%s, %d body bytes of 100000", r, body)
			}},
		{name: "backend-garbage", group: g, pass: "502",
			run: func(ctx context.Context, t *target) result {
				r := get(t, ctx, "/garbage/TOK")
				return passIf(r.status == 502, "%s", r)
			}},
		{name: "backend-256k-header", group: g, pass: "502",
			run: func(ctx context.Context, t *target) result {
				r := get(t, ctx, "/bighdr/TOK")
				return passIf(r.status == 502, "%s", r)
			}},
		{name: "one-of-two-endpoints-dead", group: g, pass: "20 of 20 requests 200",
			run: func(ctx context.Context, t *target) result {
				ok := 0
				var codes []int
				for i := range 20 {
					r := get(t, ctx, fmt.Sprintf("/twoep/TOK-%d", i))
					if r.status == 200 {
						ok++
					} else {
						codes = append(codes, r.status)
					}
				}
				return passIf(ok == 20, "%d of 20 200; others %v", ok, codes)
			}},
	}
}
