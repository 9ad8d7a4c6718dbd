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
// GETs on one keep-alive connection.
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
	return 0
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
	for len(lines) < 12 && time.Now().Before(deadline) {
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
	want[fmt.Sprintf("%d HTTP/1.1 200 OK", Write)] = 3
	want[fmt.Sprintf("%d HTTP/1.1 200 OK", Read)] = 3
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
