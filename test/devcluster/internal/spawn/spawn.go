// Package spawn starts child processes from one dedicated OS thread, optionally inside a
// named network namespace.
//
// Linux sends a child its parent-death signal (SysProcAttr.Pdeathsig) when the thread that
// forked it exits, not when the process does (go.dev/issue/27505). Go ends a thread
// whenever a goroutine that locked it returns without unlocking, which any library may do;
// a child forked earlier from that thread would be killed long before its parent. Forking
// every child from one thread that stays locked for the life of the Spawner makes
// Pdeathsig mean "when the parent process dies" (or, at the latest, when the Spawner is
// closed). The same thread enters network namespaces to fork pod processes there.
package spawn

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("spawner closed")

// Spawner forks processes from its own locked OS thread. Create it with New.
type Spawner struct {
	reqs       chan request
	done       chan struct{}
	noNewPrivs bool
}

// Option configures a Spawner.
type Option func(*Spawner)

// WithNoNewPrivs sets no_new_privs on the spawning thread before the first fork. Children
// inherit it and keep it across execve, so a set-user-ID binary or file capabilities
// cannot give them privileges their credentials do not have. Go creates new threads from
// a template thread, never from a locked one, so the flag stays on this thread alone.
func WithNoNewPrivs() Option { return func(s *Spawner) { s.noNewPrivs = true } }

type request struct {
	cmd   *exec.Cmd
	netns string
	errc  chan error
}

// New starts the spawning thread.
func New(opts ...Option) *Spawner {
	s := &Spawner{reqs: make(chan request), done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	go s.loop()
	return s
}

// Start starts cmd inside the named network namespace (as under /run/netns), or in the
// caller's namespace when netnsName is empty. Callers set SysProcAttr (Pdeathsig) as
// they like; Wait may be called from any goroutine.
func (s *Spawner) Start(cmd *exec.Cmd, netnsName string) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- request{cmd: cmd, netns: netnsName, errc: errc}:
		return <-errc
	case <-s.done:
		return ErrClosed
	}
}

// Close ends the spawning goroutine. Go usually ends its thread too, and children still
// running with Pdeathsig set then receive their signal, so stop them first.
func (s *Spawner) Close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

func (s *Spawner) loop() {
	// Locked and never unlocked: no other goroutine ever runs on this thread, so nothing
	// else can end it while children forked here are alive.
	runtime.LockOSThread()
	home, homeErr := netns.Get()
	if homeErr == nil {
		defer home.Close()
	}
	broken := homeErr
	if broken == nil && s.noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			broken = fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	for {
		select {
		case <-s.done:
			return
		case r := <-s.reqs:
			switch {
			case broken != nil:
				r.errc <- fmt.Errorf("spawner unusable: %w", broken)
			case r.netns == "":
				r.errc <- r.cmd.Start()
			default:
				err, fatal := startIn(r.cmd, r.netns, home)
				if fatal != nil {
					broken = fatal
				}
				r.errc <- errors.Join(err, fatal)
			}
		}
	}
}

// startIn enters the namespace, forks, and returns to home. fatal is set when the thread
// could not return: it then stays in the wrong namespace and must not fork again.
func startIn(cmd *exec.Cmd, name string, home netns.NsHandle) (err, fatal error) {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", name, err), nil
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", name, err), nil
	}
	startErr := cmd.Start()
	if err := netns.Set(home); err != nil {
		return startErr, fmt.Errorf("leave network namespace %s: %w", name, err)
	}
	return startErr, nil
}
