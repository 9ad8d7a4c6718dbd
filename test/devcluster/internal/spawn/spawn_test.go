package spawn

import (
	"errors"
	"os/exec"
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

// A child with Pdeathsig outlives the goroutine that asked for it (the point of the
// package) and dies when the Spawner closes (its thread ends).
func TestPdeathsigFollowsSpawner(t *testing.T) {
	s := New()
	cmd := exec.Command("/bin/sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan error, 1)
	go func() { done <- s.Start(cmd, "") }() // this goroutine ends at once
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("child died with its requesting goroutine: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s.Close()
	select {
	case <-exited:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("child ended with %v, want SIGKILL", cmd.ProcessState)
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child still running 5s after Close")
	}
}
