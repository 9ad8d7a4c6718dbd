package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/false-systems/rauta/test/devcluster/internal/spawn"
)

// execTarget is what an exec needs to run a command the way a container of the pod runs:
// the same spawner (image containers: no_new_privs), network namespace, cgroup, root,
// working folder, env and user. The pod worker publishes it while the container runs.
type execTarget struct {
	spawner *spawn.Spawner
	netns   string
	cgroup  string
	env     []string
	// root is the container's root (image containers) or "/" (binary containers, which
	// share the host's file system); chroot is set for image containers only.
	root    string
	chroot  bool
	workDir string
	ident   identity
	caps    []uintptr
}

type execKey struct {
	uid       types.UID
	container string
}

// execTargets maps running containers to their exec targets; pod workers write it, the
// exec endpoint reads it.
type execTargets struct {
	mu sync.Mutex
	m  map[execKey]execTarget
}

func newExecTargets() *execTargets { return &execTargets{m: map[execKey]execTarget{}} }

func (e *execTargets) set(uid types.UID, container string, t execTarget) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[execKey{uid, container}] = t
}

func (e *execTargets) remove(uid types.UID, container string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, execKey{uid, container})
}

func (e *execTargets) get(uid types.UID, container string) (execTarget, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.m[execKey{uid, container}]
	return t, ok
}

// execWaitDelay bounds how long an exec waits, after its command exited, for the output
// pipes to close: a background child that inherited them would otherwise hold the
// session open.
const execWaitDelay = 2 * time.Second

// executor runs exec'd commands for remotecommand.ServeExec.
type executor struct{ targets *execTargets }

// ExecInContainer runs cmd in the container's environment, stdin/stdout/stderr from and
// to the streams, and returns a utilexec.ExitError for a non-zero exit (ServeExec turns
// it into the NonZeroExitCode status clients report as the exit code). The command dies
// with the request's context and with the pod (its cgroup is killed).
func (x executor) ExecInContainer(ctx context.Context, name, uid, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if tty {
		return errors.New("tty is not supported by the devcluster node")
	}
	t, ok := x.targets.get(types.UID(uid), container)
	if !ok {
		return fmt.Errorf("container %q of pod %s is not running", container, name)
	}
	c, err := t.command(cmd)
	if err != nil {
		return err
	}
	// A nil interface, not a nil *stream, when a stream was not asked for.
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	c.WaitDelay = execWaitDelay
	var stdinW *os.File
	if in != nil {
		// An os.Pipe, not exec's own copying goroutine: Wait would wait for that one until
		// the client closes stdin, also after the command exited.
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("stdin pipe: %w", err)
		}
		c.Stdin, stdinW = r, w
		defer r.Close()
	}
	cg, err := openCgroup(t.cgroup)
	if err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return err
	}
	c.SysProcAttr.UseCgroupFD, c.SysProcAttr.CgroupFD = true, int(cg.Fd())
	err = t.spawner.Start(c, t.netns)
	cg.Close()
	if err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return fmt.Errorf("start %s: %w", cmd[0], err)
	}
	if stdinW != nil {
		go func() {
			// Ends when the client closes stdin or the connection goes (ServeExec
			// closes it after this returns); a write to an exited command fails at once.
			_, _ = io.Copy(stdinW, in)
			stdinW.Close()
		}()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Process.Kill()
		case <-done:
		}
	}()
	err = c.Wait()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return utilexec.CodeExitError{Err: err, Code: code}
	}
	return err
}

// command builds the process: argv[0] looked up in the container's PATH inside its root,
// the container's env, working folder, user and capabilities; a process group of its own
// and SIGKILL when the agent dies, as for containers.
func (t execTarget) command(argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("no command given")
	}
	r, err := os.OpenRoot(t.root)
	if err != nil {
		return nil, fmt.Errorf("container root: %w", err)
	}
	exe, err := lookPathIn(r, argv[0], t.workDir, envMap(t.env)["PATH"])
	r.Close()
	if err != nil {
		return nil, err
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if t.chroot {
		attr.Chroot = t.root
		attr.Credential = &syscall.Credential{Uid: t.ident.uid, Gid: t.ident.gid, Groups: t.ident.groups}
		if t.ident.uid != 0 {
			attr.AmbientCaps = t.caps
		}
	}
	return &exec.Cmd{Path: exe, Args: argv, Dir: t.workDir, Env: t.env, SysProcAttr: attr}, nil
}

// execServer serves the kubelet's exec endpoint on the node's TLS endpoint:
// {GET,POST} /exec/{namespace}/{pod}/{container}?command=...&input=1&output=1&error=1,
// upgraded to SPDY (v4.channel.k8s.io and older) or a WebSocket (channel.k8s.io). The API
// server's pods/exec proxies SPDY to it as it is, and translates clients speaking
// WebSocket v5.channel.k8s.io (kubectl's default) to SPDY.
type execServer struct {
	exec          executor
	getPod        func(namespace, name string) (*corev1.Pod, bool)
	slots         chan struct{}
	idleTimeout   time.Duration
	createTimeout time.Duration
}

func (s *execServer) serve(w http.ResponseWriter, r *http.Request) {
	ns, name, cname := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if opts.TTY {
		http.Error(w, "tty is not supported by the devcluster node (exec without -t)", http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "no command given", http.StatusBadRequest)
		return
	}
	pod, ok := podContainer(w, s.getPod, ns, name, cname)
	if !ok {
		return
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		http.Error(w, fmt.Sprintf("too many exec sessions on this node (at most %d)", cap(s.slots)), http.StatusTooManyRequests)
		return
	}
	remotecommand.ServeExec(w, r, s.exec, ns+"/"+name, string(pod.UID), cname, cmd, opts, s.idleTimeout, s.createTimeout, remotecommand.SupportedStreamingProtocols)
}
