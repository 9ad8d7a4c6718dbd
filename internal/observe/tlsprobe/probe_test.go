package tlsprobe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireRoot skips, saying why, where probes cannot be attached.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("attaching uprobes and kprobes needs root")
	}
}

// tlsServer serves HTTP/1.1 over TLS on loopback from this (Go) process,
// so that only the client's OpenSSL is probed.
func tlsServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := tlsServerPlain()
	t.Cleanup(srv.Close)
	return srv
}

func tlsServerPlain() *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if strings.HasPrefix(r.URL.Path, "/missing") {
			code = http.StatusNotFound
		}
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, "hello %s\n", r.URL.Path)
	}))
	srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	srv.StartTLS()
	return srv
}

// curl runs curl (OpenSSL on Debian) against url with one TLS connection
// for all of them (keep-alive).
func curl(t *testing.T, urls ...string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-sk", "--http1.1", "-o", "/dev/null"}, urls...)
	if out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
}

// libsslOf returns the libssl curl loads.
func libsslOf(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ldd", "/usr/bin/curl").Output()
	if err != nil {
		t.Skipf("ldd curl: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.HasPrefix(f[0], "libssl.so") {
			return f[2]
		}
	}
	t.Skip("curl does not link libssl")
	return ""
}

// openProbe loads the probe (root) and closes it at the test's end.
func openProbe(t *testing.T) *Probe {
	t.Helper()
	requireRoot(t)
	p, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func newReader(t *testing.T, p *Probe) *Reader {
	t.Helper()
	rd, err := NewReader(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return rd
}

func TestProbeSeesCurlPlaintext(t *testing.T) {
	p := openProbe(t)
	lib := libsslOf(t)
	ok, err := p.Attach(lib)
	if err != nil || !ok {
		t.Fatalf("attach %s: %v %v", lib, ok, err)
	}
	if again, err := p.Attach(lib); err != nil || again {
		t.Fatalf("second attach of the same file: %v %v, want false <nil>", again, err)
	}
	rd := newReader(t, p)

	srv := tlsServer(t)
	curl(t, srv.URL+"/a?id=1", srv.URL+"/missing?id=2")

	type rec struct {
		dir      Direction
		seq, ack uint32
		line     string
		src, dst string
	}
	var got []rec
	var conn uint64
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		_, err := rd.Drain(64, func(e *Event) {
			if e.Comm != "curl" {
				return
			}
			if conn == 0 {
				conn = e.Conn
			}
			if e.Conn != conn {
				t.Errorf("connection %x, want %x (one keep-alive connection)", e.Conn, conn)
			}
			line, _, _ := strings.Cut(string(e.Data), "\r\n")
			got = append(got, rec{e.Direction, e.Seq, e.Ack, line, e.Src.String(), e.Dst.String()})
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 4 {
		t.Fatalf("got %d curl events, want 4: %+v", len(got), got)
	}
	srvAddr := strings.TrimPrefix(srv.URL, "https://")
	wantLines := []string{"GET /a?id=1 HTTP/1.1", "HTTP/1.1 200 OK", "GET /missing?id=2 HTTP/1.1", "HTTP/1.1 404 Not Found"}
	for i, r := range got {
		if r.line != wantLines[i] {
			t.Errorf("event %d: %q, want %q", i, r.line, wantLines[i])
		}
		wantDir := Write
		if i%2 == 1 {
			wantDir = Read
		}
		if r.dir != wantDir {
			t.Errorf("event %d: direction %d, want %d", i, r.dir, wantDir)
		}
		peer := r.dst
		if wantDir == Read {
			peer = r.src
		}
		if peer != srvAddr {
			t.Errorf("event %d: peer %s, want the server %s", i, peer, srvAddr)
		}
	}
	// Offsets: the first request starts both streams at 0; the second
	// request starts where the first ended and acknowledges the whole
	// first response.
	if got[0].seq != 0 || got[0].ack != 0 || got[1].seq != 0 {
		t.Errorf("first exchange offsets %+v %+v, want seq 0 ack 0 / seq 0", got[0], got[1])
	}
	if got[2].seq == 0 || got[1].ack != got[2].seq || got[2].ack == 0 || got[3].seq != got[2].ack {
		t.Errorf("second exchange offsets %+v %+v do not continue the first", got[2], got[3])
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Events < 4 || st.Libraries != 1 {
		t.Errorf("stats %+v, want >= 4 events and 1 library", st)
	}
}

func TestFindLibrariesSeesRunningProcess(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	// An openssl s_server maps libssl and waits.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_server", "-quiet", "-accept", fmt.Sprint(port), "-nocert")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	want := fmt.Sprintf("/proc/%d/root/", cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		libs, err := mappedSSL(fmt.Sprintf("/proc/%d/maps", cmd.Process.Pid), 1<<20)
		if err == nil && len(libs) > 0 {
			all, err := FindLibraries(ScanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			target, err := statID(want + libs[0])
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range all {
				if !IsOpenSSL(p) {
					t.Errorf("found %q, not a libssl", p)
				}
				if id, err := statID(p); err == nil && id == target {
					found = true
				}
			}
			if !found {
				t.Fatalf("FindLibraries %q lacks the file of %s%s", all, want, libs[0])
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("openssl s_server never mapped libssl")
}
