// Package e2e starts `rauta run` as a real process and sends real HTTP/1.1,
// HTTP/2, TLS and WebSocket traffic through it on loopback. Backends are
// in-process echo servers; manifests are written per test into a temp dir.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/freeport"
)

// rautaBin is the binary TestMain built. It is the one package-level
// variable: building once per package run keeps each test's start cheap.
var rautaBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rauta-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rautaBin = filepath.Join(dir, "rauta")
	build := exec.Command("go", "build", "-o", rautaBin, "github.com/false-systems/rauta/cmd/rauta")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build rauta:", err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gateway is one running `rauta run` process.
type gateway struct {
	t      testing.TB
	dir    string // the manifest folder given with -f
	admin  string // host:port of the admin endpoints
	stdout *syncBuffer
	stderr *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process is reaped
	err    error         // Wait's result, valid after exited is closed
	once   sync.Once     // stop runs once: from a test or from Cleanup
}

// startGateway writes files (name -> content) into a fresh folder, starts
// rauta on it and waits until /readyz answers 200. extraArgs are appended
// to the command line (e.g. "-access-log=false").
func startGateway(t testing.TB, files map[string]string, extraArgs ...string) *gateway {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	return startGatewayDir(t, dir, extraArgs...)
}

// startGatewayDir starts rauta on an existing manifest folder and waits
// until it is ready.
func startGatewayDir(t testing.TB, dir string, extraArgs ...string) *gateway {
	t.Helper()
	g := launchGateway(t, dir, extraArgs...)
	g.waitReady()
	return g
}

// launchGateway starts rauta on a manifest folder without waiting for it.
func launchGateway(t testing.TB, dir string, extraArgs ...string) *gateway {
	t.Helper()
	g := &gateway{
		t:      t,
		dir:    dir,
		admin:  net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))),
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	// No probe server (parallel gateways would share its port) and no
	// drain period (stop waits 5s); drain_test.go asks for both.
	args := append([]string{"run", "-f", dir, "-address", "127.0.0.1", "-admin-addr", g.admin, "-metrics-addr=", "-drain-period=0s", "-log-level", "debug"}, extraArgs...)
	g.cmd = exec.Command(rautaBin, args...)
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	// Keep the environment from changing flags behind the test's back.
	g.cmd.Env = cleanEnv()
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start rauta: %v", err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(g.stop)
	return g
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAUTA_") {
			env = append(env, kv)
		}
	}
	return env
}

// stop ends the process: SIGTERM, then SIGKILL after a grace period. It
// always reaps it, and prints its output when the test failed.
func (g *gateway) stop() { g.once.Do(g.terminate) }

func (g *gateway) terminate() {
	select {
	case <-g.exited:
		g.t.Errorf("rauta exited before the test ended: %v", g.err)
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
			// SIGTERM is the normal way to stop: a graceful exit is 0.
			if g.err != nil {
				g.t.Errorf("rauta exited with %v after SIGTERM, want a clean exit", g.err)
			}
		case <-time.After(5 * time.Second):
			g.t.Errorf("rauta did not stop within 5s of SIGTERM; killing it")
			_ = g.cmd.Process.Kill()
			<-g.exited
		}
	}
	if g.t.Failed() {
		g.t.Logf("rauta stderr:\n%s", g.stderr.String())
		g.t.Logf("rauta stdout:\n%s", g.stdout.String())
	}
}

// alive fails t when the process has exited.
func (g *gateway) alive(t testing.TB) {
	t.Helper()
	select {
	case <-g.exited:
		t.Fatalf("rauta exited: %v", g.err)
	default:
	}
}

func (g *gateway) waitReady() {
	g.t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			g.t.Fatalf("rauta exited before it was ready: %v\nstderr:\n%s", g.err, g.stderr.String())
		default:
		}
		resp, err := client.Get("http://" + g.admin + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("rauta not ready within 15s\nstderr:\n%s", g.stderr.String())
}

// adminGet fetches an admin endpoint and returns status and body.
func (g *gateway) adminGet(path string) (int, string) {
	g.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + g.admin + path)
	if err != nil {
		g.t.Fatalf("GET admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("read admin %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// writeFile writes atomically (temp file + rename), the way editors and
// ConfigMap volumes replace files, so the watcher never sees half a file.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("rename %s: %v", path, err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago, outside
// the ephemeral range (internal/freeport).
func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return p
}
