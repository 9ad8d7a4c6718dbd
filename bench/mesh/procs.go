package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// proc is a child process in a cgroup (and a pod's network namespace).
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *tail // what the child wrote last, for its error
	done   chan struct{}
	err    error
}

// command makes a command for argv in cgroup dir; with ns set it runs in
// that network namespace (`ip netns exec` execs argv, so the process is
// argv itself). env is added to the bench's environment (roleEnv selects
// the bench binary's child role).
func command(ctx context.Context, dir, ns string, env []string, argv ...string) (*exec.Cmd, *os.File, error) {
	cg, err := os.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd()), Setpgid: true}
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd, cg, nil
}

// role is the environment that makes the bench binary run as a child role.
func role(name string) []string { return []string{roleEnv + "=" + name} }

// start runs a long-lived child (server, agent, sidecar).
func start(ctx context.Context, name, dir, ns string, env []string, argv ...string) (*proc, error) {
	cmd, cg, err := command(ctx, dir, ns, env, argv...)
	if err != nil {
		return nil, err
	}
	defer cg.Close()
	p := &proc{name: name, cmd: cmd, stderr: &tail{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends the child with SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited early: %w: %s", p.name, p.err, p.stderr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// exited reports whether the child has ended, with its error and output.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %w: %s", p.name, p.err, p.stderr)
	default:
		return nil
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
