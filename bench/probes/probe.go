package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/false-systems/rauta/bench/internal/procgroup"
)

// probe is one attack or fault, with the criterion it is judged by.
type probe struct {
	name  string
	group string
	pass  string // the pass criterion, as the table prints it
	run   func(ctx context.Context, t *target) result
}

// result is one probe against one proxy.
type result struct {
	pass bool
	what string // status, bytes, time, RSS: what happened
	died string // set when the proxy was gone or panicked after the probe
}

func passIf(ok bool, format string, args ...any) result {
	return result{pass: ok, what: fmt.Sprintf(format, args...)}
}

// target is one running proxy.
type target struct {
	*contender
	proc    *procgroup.Proc
	be      *backends
	timeout time.Duration
	tok     string // unique per probe run: marks the probe's requests on the backend wire
	logAt   int64  // length of the proxy's log before the probe
}

// probeBudget bounds one probe: the longest stall probe waits for three
// timeouts.
func (t *target) probeBudget() time.Duration { return 3*t.timeout + 20*time.Second }

// run runs one probe with a fresh token and a clean backend wire, then
// checks the proxy is alive and has not logged a panic.
func (t *target) run(ctx context.Context, p probe) result {
	var b [6]byte
	_, _ = rand.Read(b[:])
	t.tok = "p" + hex.EncodeToString(b[:])
	t.be.w.reset()
	if fi, err := os.Stat(t.proc.Log); err == nil {
		t.logAt = fi.Size()
	}
	ctx, cancel := context.WithTimeout(ctx, t.probeBudget())
	defer cancel()
	res := p.run(ctx, t)
	if ok, err := t.proc.Exited(); ok {
		res.pass = false
		res.died = fmt.Sprintf("exited after %s: %v", p.name, err)
	} else if i := crashIndex(t.newLog()); t.name == "rauta" && i >= 0 {
		res.pass = false
		res.died = fmt.Sprintf("logged a panic in %s: %.200q", p.name, t.newLog()[i:])
	}
	if res.died != "" {
		res.what += "; PROCESS " + res.died
	}
	return res
}

// crashIndex finds a Go panic (recovered and logged, or fatal) or a
// runtime fatal error in a log, or returns -1.
func crashIndex(log string) int {
	for _, m := range []string{"panic", "fatal error:"} {
		if i := strings.Index(log, m); i >= 0 {
			return i
		}
	}
	return -1
}

// newLog is what the proxy logged since the probe began.
func (t *target) newLog() string {
	f, err := os.Open(t.proc.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(t.logAt, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

// waitReady waits until both listeners route a request to the backend.
func (t *target) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		t.tok = "ready"
		r := t.h1Exchange(ctx, []byte("GET /api/ready HTTP/1.1\r\nHost: probes\r\nConnection: close\r\n\r\n"), 2*time.Second)
		if r.status == 200 {
			c, err := t.h2Dial(ctx)
			if err == nil {
				st := c.get(ctx, 1, "/api/ready", nil, 2*time.Second)
				c.close()
				if st.status == 200 {
					return nil
				}
			}
		}
		if ok, err := t.proc.Exited(); ok {
			return fmt.Errorf("exited at start: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not routing GET /api/ready within 30 s (last: %s)", r)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rss is the proxy's resident memory (all processes of its group).
func (t *target) rss() int64 { return int64(procgroup.RSSBytes(t.proc.PGID())) }

// h1Result is what came back on one raw HTTP/1.1 connection.
type h1Result struct {
	data      []byte
	status    int // of the first response; 0 when none
	responses int // status lines seen
	closed    bool
	reset     bool
	timedOut  bool // the read deadline passed with the connection open
	elapsed   time.Duration
	err       error
}

func (r h1Result) String() string {
	var parts []string
	if r.status != 0 {
		s := strconv.Itoa(r.status)
		if r.responses > 1 {
			s += fmt.Sprintf(" (+%d more responses)", r.responses-1)
		}
		parts = append(parts, s)
	} else if len(r.data) > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes, no status line", len(r.data)))
	} else {
		parts = append(parts, "no response")
	}
	switch {
	case r.reset:
		parts = append(parts, "reset")
	case r.closed:
		parts = append(parts, "closed")
	case r.timedOut:
		parts = append(parts, "still open")
	case r.err != nil:
		parts = append(parts, r.err.Error())
	}
	parts = append(parts, fmtDur(r.elapsed))
	return strings.Join(parts, ", ")
}

func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// maxResponse bounds what a probe reads back.
const maxResponse = 4 << 20

// h1Exchange sends req on a new connection and reads until the proxy
// closes it, wait passes, or maxResponse bytes came.
func (t *target) h1Exchange(ctx context.Context, req []byte, wait time.Duration) h1Result {
	c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", t.h1)
	if err != nil {
		return h1Result{err: err}
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(wait))
	if _, err := c.Write(req); err != nil {
		r := readAll(c, start, wait)
		if r.err == nil && !r.closed {
			r.err = err
		}
		return r
	}
	return readAll(c, start, wait)
}

// readAll reads what the proxy sends until close, deadline or the bound.
func readAll(c net.Conn, start time.Time, wait time.Duration) h1Result {
	var r h1Result
	_ = c.SetReadDeadline(start.Add(wait))
	buf := make([]byte, 64<<10)
	for len(r.data) < maxResponse {
		n, err := c.Read(buf)
		r.data = append(r.data, buf[:n]...)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF):
				r.closed = true
			case errors.Is(err, syscall.ECONNRESET):
				r.closed, r.reset = true, true
			case errors.As(err, &ne) && ne.Timeout():
				r.timedOut = true
			default:
				r.err = err
			}
			break
		}
	}
	r.elapsed = time.Since(start)
	r.status, r.responses = statusLines(r.data)
	return r
}

// statusLines finds the first status code and counts the status lines at
// the start of a line ("HTTP/1.x NNN").
func statusLines(b []byte) (first, n int) {
	for i := 0; i < len(b); {
		j := bytes.Index(b[i:], []byte("HTTP/1."))
		if j < 0 {
			break
		}
		at := i + j
		if (at == 0 || b[at-1] == '\n') && at+12 <= len(b) {
			if code, err := strconv.Atoi(string(b[at+9 : at+12])); err == nil {
				if n == 0 {
					first = code
				}
				n++
			}
		}
		i = at + 7
	}
	return first, n
}

// head is a request head for probe paths: request line plus Host.
func (t *target) path(p string) string { return strings.ReplaceAll(p, "TOK", t.tok) }

// allProbes lists every probe in table order.
func allProbes() []probe {
	var all []probe
	for _, g := range [][]probe{h1Probes(), limitProbes(), pathProbes(), stallProbes(), backendProbes(), h2Probes()} {
		all = append(all, g...)
	}
	return all
}
