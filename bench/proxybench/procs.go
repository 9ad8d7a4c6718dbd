package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// procs tracks every long-running process the harness starts so that all of
// them are stopped on success, failure and Ctrl-C alike. Each process runs in
// its own process group; stopping signals the whole group, which also reaches
// nginx workers.
type procs struct {
	mu   sync.Mutex
	live map[int]*proc
}

// proc is one started process (a contender or the backend).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	log  string
}

func newProcs() *procs { return &procs{live: map[int]*proc{}} }

// start runs argv with env added to the environment, stdout and stderr in
// logPath. The process is its own group leader, so its pid is its pgid.
func (ps *procs) start(name string, argv []string, env []string, logPath string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.live[cmd.Process.Pid] = p
	ps.mu.Unlock()
	return p, nil
}

func (p *proc) pgid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the group, then SIGKILL after grace. It is safe to
// call more than once.
func (ps *procs) stop(p *proc, grace time.Duration) {
	ps.mu.Lock()
	delete(ps.live, p.pgid())
	ps.mu.Unlock()
	if ok, _ := p.exited(); !ok {
		_ = syscall.Kill(-p.pgid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.pgid(), syscall.SIGKILL)
			<-p.done
		}
	}
	// Workers that outlived their master (nginx, on SIGKILL) keep the group
	// alive; while any member lives its id cannot be reused, so the signal
	// only reaches processes this harness started.
	if len(groupPIDs(p.pgid())) > 0 {
		_ = syscall.Kill(-p.pgid(), syscall.SIGKILL)
	}
}

// stopAll stops every process still running.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	all := make([]*proc, 0, len(ps.live))
	for _, p := range ps.live {
		all = append(all, p)
	}
	ps.mu.Unlock()
	for _, p := range all {
		ps.stop(p, 3*time.Second)
	}
}

// runTool runs a bounded load tool or helper to completion in its own process
// group, killing the group when ctx ends.
func runTool(ctx context.Context, timeout time.Duration, argv []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		return out, fmt.Errorf("%s: timed out after %s", argv[0], timeout)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", argv[0], err, tail(out, 400))
	}
	return out, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
