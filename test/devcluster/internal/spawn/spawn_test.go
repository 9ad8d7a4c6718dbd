package spawn

import (
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartInCurrentNamespace(t *testing.T) {
	s := New()
	defer s.Close()
	cmd := exec.Command("/bin/sh", "-c", "echo started")
	var out strings.Builder
	cmd.Stdout = &out
	if err := s.Start(cmd, ""); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "started\n" {
		t.Errorf("output %q", out.String())
	}
}

func TestStartUnknownNamespace(t *testing.T) {
	s := New()
	defer s.Close()
	err := s.Start(exec.Command("/bin/true"), "rauta-spawn-test-does-not-exist")
	if err == nil || !strings.Contains(err.Error(), "rauta-spawn-test-does-not-exist") {
		t.Errorf("error %v, want one naming the namespace", err)
	}
	// The spawner still works afterwards.
	if err := s.Start(exec.Command("/bin/true"), ""); err != nil {
		t.Errorf("after a failed start: %v", err)
	}
}

func TestStartAfterClose(t *testing.T) {
	s := New()
	s.Close()
	s.Close() // idempotent
	if err := s.Start(exec.Command("/bin/true"), ""); !errors.Is(err, ErrClosed) {
		t.Errorf("error %v, want ErrClosed", err)
	}
}

// Regression for go.dev/issue/27505: a child with Pdeathsig must survive both the
// goroutine that asked for it and other goroutines that end while holding a locked thread
// (Go ends those threads), since neither is the parent process dying.
func TestPdeathsigSurvivesThreadExits(t *testing.T) {
	s := New()
	defer s.Close()
	cmd := exec.Command("/bin/sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan error, 1)
	go func() { done <- s.Start(cmd, "") }() // this goroutine ends at once
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for range 8 {
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			runtime.LockOSThread() // never unlocked: Go ends this thread
		}()
		<-ended
	}
	select {
	case err := <-exited:
		t.Fatalf("child died although its parent process lives: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
}

// Children of a WithNoNewPrivs spawner have no_new_privs; children of a plain one, and
// other processes of the test, do not (the flag stays on the spawning thread).
func TestNoNewPrivs(t *testing.T) {
	nnp := func(s *Spawner) string {
		t.Helper()
		cmd := exec.Command("/bin/grep", "^NoNewPrivs:", "/proc/self/status")
		var out strings.Builder
		cmd.Stdout = &out
		if err := s.Start(cmd, ""); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(out.String()), " ")
	}
	strict := New(WithNoNewPrivs())
	defer strict.Close()
	plain := New()
	defer plain.Close()
	if got := nnp(strict); got != "NoNewPrivs: 1" {
		t.Errorf("child of WithNoNewPrivs spawner: %q, want NoNewPrivs: 1", got)
	}
	if got := nnp(plain); got != "NoNewPrivs: 0" {
		t.Errorf("child of plain spawner: %q, want NoNewPrivs: 0", got)
	}
	out, err := exec.Command("/bin/grep", "^NoNewPrivs:", "/proc/self/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(out)), " "); got != "NoNewPrivs: 0" {
		t.Errorf("child started outside the spawners: %q, want NoNewPrivs: 0", got)
	}
}
