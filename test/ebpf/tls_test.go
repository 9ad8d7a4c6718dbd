package ebpf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe"
)

// tlsRecord is an exchange line with the TLS fields.
type tlsRecord struct {
	Type    string `json:"type"`
	Method  string `json:"method"`
	Target  string `json:"target"`
	Status  int    `json:"status"`
	Outcome string `json:"outcome"`
	Client  string `json:"client"`
	Server  string `json:"server"`
	Scheme  string `json:"scheme"`
	PID     uint32 `json:"pid"`
	Process string `json:"process"`
	// Pod is the server address's; ProcessPod and ProcessNamespace the
	// process's, by its cgroup.
	Pod              string `json:"pod"`
	ProcessPod       string `json:"process_pod"`
	ProcessNamespace string `json:"process_namespace"`
}

func (b *syncBuffer) tlsRecords(t *testing.T) []tlsRecord {
	t.Helper()
	b.mu.Lock()
	data := append([]byte(nil), b.buf.Bytes()...)
	b.mu.Unlock()
	var out []tlsRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r tlsRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("observer line %q: %v", sc.Text(), err)
		}
		if r.Type == "exchange" {
			out = append(out, r)
		}
	}
	return out
}

// startTLSServer serves HTTP/1.1 over TLS (Go's crypto/tls, not probed)
// inside the server namespace: /status/{code} answers that status, and
// POST bodies are read whole.
func startTLSServer(t *testing.T, tp *topology, port int) string {
	t.Helper()
	ln := tp.listenOn(t, net.JoinHostPort(tp.serverIP, strconv.Itoa(port)))
	srv := serveTLS(ln)
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

// serveTLS serves HTTP/1.1 over TLS on ln with a test certificate.
func serveTLS(ln net.Listener) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		code := http.StatusOK
		if c, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			if n, err := strconv.Atoi(c); err == nil && n >= 200 && n <= 599 {
				code = n
			}
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "tls body\n")
	}))
	srv.Listener.Close()
	srv.Listener = ln
	// HTTP/1.1 only: curl would negotiate h2 through ALPN otherwise.
	srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	srv.StartTLS()
	return srv
}

// goServerEnv makes the test binary a Go crypto/tls server on the
// address it holds (TestMain), in a process of its own: the observer
// never probes its own process.
const goServerEnv = "RAUTA_TEST_GO_TLS_SERVER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(goServerEnv); addr != "" {
		os.Exit(runGoTLSServer(addr))
	}
	os.Exit(m.Run())
}

// runGoTLSServer serves until its standard input closes.
func runGoTLSServer(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := serveTLS(ln)
	defer srv.Close()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startGoTLSChild runs the test binary as a Go TLS server in the server
// namespace and returns its address and process id; it is stopped in
// t.Cleanup (stdin closed, then killed if still there).
func startGoTLSChild(t *testing.T, tp *topology, port int) (string, int) {
	t.Helper()
	return startGoTLSChildIn(t, tp, port, "")
}

// startGoTLSChildIn is startGoTLSChild with the server started in cgroup
// v2 directory cgroup ("": the test's own).
func startGoTLSChildIn(t *testing.T, tp *topology, port int, cgroup string) (string, int) {
	t.Helper()
	addr := net.JoinHostPort(tp.serverIP, strconv.Itoa(port))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", tp.server, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), goServerEnv+"="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	startInCgroup(t, cmd, cgroup)
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("go tls server: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("go tls server not ready within 10s")
	}
	// ip netns exec execs the binary: the server's pid is the command's.
	return addr, cmd.Process.Pid
}

// curlIn runs curl (OpenSSL) in the client namespace: every URL on one
// keep-alive TLS connection, extra flags first.
func curlIn(t *testing.T, tp *topology, extra []string, urls []string) {
	t.Helper()
	curlInCgroup(t, tp, "", extra, urls)
}

// curlInCgroup is curlIn with curl started in cgroup v2 directory cgroup
// ("": the test's own).
func curlInCgroup(t *testing.T, tp *topology, cgroup string, extra []string, urls []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"netns", "exec", tp.client, "curl", "-sk", "--http1.1"}, extra...)
	args = append(args, urls...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startInCgroup(t, cmd, cgroup)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curl: %v: %s", err, out.Bytes())
	}
}

// startInCgroup starts cmd, in cgroup v2 directory cgroup when it is not
// "" (clone3 into the cgroup: the process never runs outside it).
func startInCgroup(t *testing.T, cmd *exec.Cmd, cgroup string) {
	t.Helper()
	if cgroup != "" {
		dir, err := os.Open(cgroup)
		if err != nil {
			t.Fatal(err)
		}
		defer dir.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// TestTLSPlaintextFromOpenSSL: curl (OpenSSL) talks HTTPS to a server
// through the router, where the packet programs see only ciphertext. With
// -tls-uprobes every exchange is reported once, from curl's plaintext,
// with url_scheme https, its exact method, target and status, the
// process and the connection's addresses; the packet path reports none
// of them.
func TestTLSPlaintextFromOpenSSL(t *testing.T) {
	tp := newTopology(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("SKIP: curl not installed")
	}
	addr := startTLSServer(t, tp, 8443)
	o := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.TLS.Enabled = true
		c.TLS.ScanInterval = time.Second
	})

	codes := []int{200, 201, 404, 503, 204}
	const gets = 20
	var urls []string
	want := map[string]int{} // target -> status
	for i := range gets {
		code := codes[i%len(codes)]
		target := fmt.Sprintf("/status/%d?id=g%d", code, i)
		want[target] = code
		urls = append(urls, "https://"+addr+target)
	}
	curlIn(t, tp, nil, urls)
	// POSTs with 3000-byte bodies on a second connection: the bodies
	// move the plaintext offsets that pair the next request.
	body := strings.Repeat("b", 3000)
	var posts []string
	for i := range 5 {
		target := fmt.Sprintf("/status/202?id=p%d", i)
		want[target] = 202
		posts = append(posts, "https://"+addr+target)
	}
	curlIn(t, tp, []string{"--data-binary", body}, posts)

	ours := func(recs []tlsRecord) []tlsRecord {
		var out []tlsRecord
		for _, r := range recs {
			if _, ok := want[r.Target]; ok {
				out = append(out, r)
			}
		}
		return out
	}
	deadline := time.Now().Add(15 * time.Second)
	var got []tlsRecord
	for time.Now().Before(deadline) {
		if got = ours(o.out.tlsRecords(t)); len(got) >= len(want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, r := range got {
		seen[r.Target]++
		if r.Scheme != "https" {
			t.Errorf("%s reported with scheme %q (the packet path sees only ciphertext): %+v", r.Target, r.Scheme, r)
			continue
		}
		wantMethod := "GET"
		if strings.Contains(r.Target, "id=p") {
			wantMethod = "POST"
		}
		if r.Method != wantMethod || r.Status != want[r.Target] || r.Outcome != "complete" {
			t.Errorf("%s: %s status %d %s, want %s %d complete", r.Target, r.Method, r.Status, r.Outcome, wantMethod, want[r.Target])
		}
		if r.Process != "curl" || r.PID == 0 {
			t.Errorf("%s: process %q pid %d, want curl", r.Target, r.Process, r.PID)
		}
		if r.Server != addr || !strings.HasPrefix(r.Client, tp.clientIP+":") {
			t.Errorf("%s: %s -> %s, want %s:* -> %s", r.Target, r.Client, r.Server, tp.clientIP, addr)
		}
	}
	for target := range want {
		if seen[target] != 1 {
			t.Errorf("%s reported %d times, want once", target, seen[target])
		}
	}
	if v := o.metric(t, "http_server_request_duration_seconds_count", `url_scheme="https"`); v < float64(len(want)) {
		t.Errorf("https exchanges in metrics: %v, want >= %d", v, len(want))
	}
	// Counters are published on the observer's tick: wait for them.
	waitMetric := func(name, labels string, atLeast float64) float64 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			v := o.metric(t, name, labels)
			if v >= atLeast || time.Now().After(deadline) {
				return v
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMetric("rauta_observer_tls_events_total", "", float64(2*len(want)))
	if v := o.metric(t, "rauta_observer_tls_events_total", ""); v < float64(2*len(want)) {
		t.Errorf("rauta_observer_tls_events_total %v, want >= %d", v, 2*len(want))
	}
	if v := o.metric(t, "rauta_observer_tls_libraries", ""); v < 1 {
		t.Errorf("rauta_observer_tls_libraries %v, want >= 1", v)
	}
	if v := o.metric(t, "rauta_observer_tls_ringbuf_dropped_total", ""); v != 0 {
		t.Errorf("rauta_observer_tls_ringbuf_dropped_total %v, want 0", v)
	}
	o.stop(t)
}

// TestTLSPlaintextFromGoServer: curl (OpenSSL) against a Go crypto/tls
// server in another process. Both sides are probed (the server through
// uprobes at (*Conn).Write's entry and at each RET of (*Conn).Read), so
// every request id is reported exactly twice, once by each process, with
// the same method, target, status and addresses.
func TestTLSPlaintextFromGoServer(t *testing.T) {
	tp := newTopology(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("SKIP: curl not installed")
	}
	o := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.TLS.Enabled = true
		c.TLS.ScanInterval = 200 * time.Millisecond
	})
	addr, serverPID := startGoTLSChild(t, tp, 8443)
	// The child is the observer's own binary, probed at start; its
	// process is not the observer's, so it is observed.
	codes := []int{200, 404, 503, 201}
	want := map[string]int{}
	var urls []string
	for i := range 12 {
		code := codes[i%len(codes)]
		target := fmt.Sprintf("/status/%d?id=go%d", code, i)
		want[target] = code
		urls = append(urls, "https://"+addr+target)
	}
	curlIn(t, tp, nil, urls)

	type side struct{ curl, server int }
	deadline := time.Now().Add(15 * time.Second)
	var recs []tlsRecord
	for time.Now().Before(deadline) {
		recs = recs[:0]
		for _, r := range o.out.tlsRecords(t) {
			if _, ok := want[r.Target]; ok {
				recs = append(recs, r)
			}
		}
		if len(recs) >= 2*len(want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[string]*side{}
	for _, r := range recs {
		if seen[r.Target] == nil {
			seen[r.Target] = &side{}
		}
		switch {
		case r.Process == "curl":
			seen[r.Target].curl++
		case r.PID == uint32(serverPID):
			seen[r.Target].server++
		default:
			t.Errorf("%s reported by process %q pid %d (scheme %q), want curl or the server (pid %d)", r.Target, r.Process, r.PID, r.Scheme, serverPID)
			continue
		}
		if r.Scheme != "https" || r.Method != "GET" || r.Status != want[r.Target] || r.Outcome != "complete" {
			t.Errorf("%s: %s %s status %d %s, want https GET %d complete", r.Target, r.Scheme, r.Method, r.Status, r.Outcome, want[r.Target])
		}
		if r.Server != addr || !strings.HasPrefix(r.Client, tp.clientIP+":") {
			t.Errorf("%s (%s): %s -> %s, want %s:* -> %s", r.Target, r.Process, r.Client, r.Server, tp.clientIP, addr)
		}
	}
	for target := range want {
		if s := seen[target]; s == nil || s.curl != 1 || s.server != 1 {
			t.Errorf("%s reported %+v times (curl, server), want once each", target, s)
		}
	}
	o.stop(t)
}
