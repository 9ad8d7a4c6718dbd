package node

import (
	"os"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Regression: after a restart the status lost the previous run's termination, so
// lastState.terminated was empty for a container that had been killed.
func TestContainerSnapshotAcrossRestarts(t *testing.T) {
	c := &container{spec: corev1.Container{Name: "c", Image: "i"}, pid: 10, running: true, startedAt: time.Now()}
	c.exited(exitEvent{state: runExit(t, "exit 3")})
	c.waitReason = "CrashLoopBackOff"
	if s := c.snapshot(); s.Running || s.Terminated != nil || s.LastTerminated == nil || s.LastTerminated.ExitCode != 3 {
		t.Fatalf("in back-off: %+v", s)
	}
	// Restarted and running: the exit-3 run is the last termination.
	c.running, c.pid, c.waitReason, c.restarts = true, 11, "", 1
	if s := c.snapshot(); !s.Running || s.LastTerminated == nil || s.LastTerminated.ExitCode != 3 || s.Restarts != 1 {
		t.Fatalf("running after restart: %+v", s)
	}
	// Killed for good (restart policy Never): current state terminated by the signal,
	// the exit-3 run before it.
	c.exited(exitEvent{state: runExit(t, "kill -9 $$")})
	s := c.snapshot()
	if s.Terminated == nil || s.Terminated.ExitCode != 137 || s.Terminated.Signal != 9 {
		t.Fatalf("terminated by SIGKILL: %+v", s.Terminated)
	}
	if s.LastTerminated == nil || s.LastTerminated.ExitCode != 3 {
		t.Fatalf("previous run: %+v", s.LastTerminated)
	}
}

// runExit runs a shell snippet and returns how it ended: a real exit status, not a
// hand-built one.
func runExit(t *testing.T, script string) *os.ProcessState {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("sh -c %q did not run", script)
	}
	return cmd.ProcessState
}
