package tlsprobe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary a Go program doing HTTPS requests to
// itself (TestMain): the probe filters out its own process.
const childEnv = "RAUTA_TLSPROBE_GO_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(goChild())
	}
	os.Exit(m.Run())
}

// goChild runs a Go crypto/tls server and client in one process: three
// GETs on one keep-alive connection, then one request read in two parts.
func goChild() int {
	srv := tlsServerPlain()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // test certificate
		ForceAttemptHTTP2: false,
	}}
	for i := range 3 {
		res, err := client.Get(fmt.Sprintf("%s/go/%d", srv.URL, i))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if err := splitRead(srv.TLS.Certificates); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// splitRead: a server that reads one byte and then the rest, as Go's
// net/http server does when its read-ahead catches the next request.
func splitRead(certs []tls.Certificate) error {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: certs})
	if err != nil {
		return err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 512)
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			done <- err
			return
		}
		if _, err := c.Read(buf[1:]); err != nil {
			done <- err
			return
		}
		_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /split HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	if _, err := c.Read(make([]byte, 512)); err != nil {
		return err
	}
	return <-done
}

func TestRetOffsetsOfThisBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	g, err := findGoTLS(exe)
	if err != nil {
		t.Fatal(err)
	}
	rets := g.rets
	// Read has a normal return and error returns; the last instruction
	// of a function is not a RET only with trailing padding or a call to
	// morestack, so at least one RET must be found and none at offset 0.
	if len(rets) == 0 || rets[0] == 0 {
		t.Fatalf("RET offsets %v", rets)
	}
	if g.read == 0 || g.write == 0 || g.read == g.write {
		t.Fatalf("entries %+v", g)
	}
	if _, err := findGoTLS("/bin/sh"); err == nil {
		t.Error("a C binary reported as Go crypto/tls")
	}
}

func TestProbeSeesGoPlaintext(t *testing.T) {
	p := openProbe(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.AttachGo(exe); err != nil || !ok {
		t.Fatalf("attach %s: %v %v", exe, ok, err)
	}
	rd := newReader(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	child := uint32(cmd.Process.Pid)
	var lines []string
	deadline := time.Now().Add(10 * time.Second)
	for len(lines) < 16 && time.Now().Before(deadline) {
		if _, err := rd.Drain(64, func(e *Event) {
			if e.PID != child {
				return
			}
			if e.Library != LibGo {
				t.Errorf("library %d, want Go", e.Library)
			}
			l, _, _ := strings.Cut(string(e.Data), "\r\n")
			lines = append(lines, fmt.Sprintf("%d %s", e.Direction, l))
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Client and server in one process: each request is written by the
	// client and read by the server, each response written and read.
	want := map[string]int{}
	for i := range 3 {
		want[fmt.Sprintf("%d GET /go/%d HTTP/1.1", Write, i)]++
		want[fmt.Sprintf("%d GET /go/%d HTTP/1.1", Read, i)]++
	}
	want[fmt.Sprintf("%d HTTP/1.1 200 OK", Write)] = 4
	want[fmt.Sprintf("%d HTTP/1.1 200 OK", Read)] = 4
	// The split request: written whole, read as 1 byte and the rest, and
	// still seen from its first byte.
	want[fmt.Sprintf("%d GET /split HTTP/1.1", Write)] = 1
	want[fmt.Sprintf("%d GET /split HTTP/1.1", Read)] = 1
	got := map[string]int{}
	for _, l := range lines {
		got[l]++
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%q seen %d times, want %d (all: %q)", k, got[k], n, lines)
		}
	}
}
