package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/false-systems/rauta/test/devcluster/internal/spawn"
)

// container is one container of a pod: its resolved binary or image, environment and
// current process. Only the pod worker's goroutine touches it.
type container struct {
	spec    corev1.Container
	binary  string // a host path, or for an image the absolute path inside its root
	args    []string
	env     []string
	logPath string
	workDir string // a host folder, or for an image the folder inside its root

	// Image containers only: the unpacked image, the host folder of this container's
	// root (rebuilt at every start), argv as given (argv[0] may be relative), the volumes
	// to write into the root, and who the process runs as.
	image  *unpackedImage
	root   string
	argv   []string
	mounts []imageMount
	ident  identity
	caps   []uintptr
	// stopSignal replaces SIGTERM when the pod stops (the image config's StopSignal).
	stopSignal syscall.Signal

	cmd       *exec.Cmd
	pid       int
	running   bool
	startedAt time.Time
	restarts  int32
	// terminated is the end of the last run; lastTerminated the one before a restart.
	terminated     *corev1.ContainerStateTerminated
	lastTerminated *corev1.ContainerStateTerminated
	nextStart      time.Time
	ready          bool
	waitReason     string
	waitMessage    string
}

// exitEvent reports that a container process ended.
type exitEvent struct {
	index int
	pid   int
	state *os.ProcessState
	err   error
}

// start launches the container's process inside the pod's network namespace and cgroup
// (it is created in the cgroup, CLONE_INTO_CGROUP), output appended to its log file, and reports its exit on exits. Pdeathsig kills it if the agent dies.
// A worker that has returned no longer reads exits; done (closed then) releases the
// waiting goroutine of a process that ended after that.
func (c *container) start(sp *spawn.Spawner, index int, netnsName, cgroupDir string, exits chan<- exitEvent, done <-chan struct{}) error {
	if c.image == nil {
		if err := os.MkdirAll(c.workDir, 0o755); err != nil {
			return fmt.Errorf("container %q: create working folder: %w", c.spec.Name, err)
		}
	}
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("container %q: open log: %w", c.spec.Name, err)
	}
	defer logFile.Close()
	cmd := c.command()
	cmd.Env = c.env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cg, err := openCgroup(cgroupDir)
	if err != nil {
		return fmt.Errorf("container %q: %w", c.spec.Name, err)
	}
	defer cg.Close()
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	if err := sp.Start(cmd, netnsName); err != nil {
		if c.image != nil && errors.Is(err, syscall.ENOENT) {
			// The executable was found in the image before: what is missing is its ELF
			// interpreter, as for a dynamically linked binary in an image without libc.
			return fmt.Errorf("container %q: start %s: %w (a dynamically linked executable whose loader is not in the image?)", c.spec.Name, c.binary, err)
		}
		return fmt.Errorf("container %q: start %s: %w", c.spec.Name, c.binary, err)
	}
	c.cmd, c.pid, c.running, c.startedAt = cmd, cmd.Process.Pid, true, time.Now()
	c.waitReason, c.waitMessage = "", ""
	pid := c.pid
	go func() {
		err := cmd.Wait()
		select {
		case exits <- exitEvent{index: index, pid: pid, state: cmd.ProcessState, err: err}:
		case <-done:
		}
	}()
	return nil
}

// command is the process to start. A binary runs as root on the host file system. An
// image runs chrooted into its own root, in its working folder there (the kernel
// resolves Path and Dir after the chroot), as the resolved user with only the pod's
// supplementary groups, and with the capabilities the container adds as ambient ones.
// The image spawner sets no_new_privs.
func (c *container) command() *exec.Cmd {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.image == nil {
		cmd := exec.Command(c.binary, c.args...)
		cmd.Dir = c.workDir
		cmd.SysProcAttr = attr
		return cmd
	}
	attr.Chroot = c.root
	attr.Credential = &syscall.Credential{Uid: c.ident.uid, Gid: c.ident.gid, Groups: c.ident.groups}
	if c.ident.uid != 0 {
		attr.AmbientCaps = c.caps
	}
	return &exec.Cmd{Path: c.binary, Args: c.argv, Dir: c.workDir, SysProcAttr: attr}
}

// execTarget is how an exec runs a command as this container runs (valid while it runs).
func (c *container) execTarget(sp *spawn.Spawner, netnsName, cgroupDir string) execTarget {
	t := execTarget{spawner: sp, netns: netnsName, cgroup: cgroupDir, env: c.env, root: "/", workDir: c.workDir}
	if c.image != nil {
		t.root, t.chroot, t.ident, t.caps = c.root, true, c.ident, c.caps
	}
	return t
}

// exited records the end of the current run.
func (c *container) exited(ev exitEvent) {
	code, reason := int32(-1), "Error"
	signal := int32(0)
	if ev.state != nil {
		if ws, ok := ev.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			signal = int32(ws.Signal())
			code = 128 + signal
		} else {
			code = int32(ev.state.ExitCode())
		}
	}
	if code == 0 {
		reason = "Completed"
	}
	msg := ""
	if ev.err != nil && ev.state == nil {
		msg = ev.err.Error()
	}
	c.lastTerminated = c.terminated
	c.terminated = &corev1.ContainerStateTerminated{
		ExitCode:    code,
		Signal:      signal,
		Reason:      reason,
		Message:     msg,
		StartedAt:   metav1.NewTime(c.startedAt.Truncate(time.Second)),
		FinishedAt:  metav1.NewTime(time.Now().Truncate(time.Second)),
		ContainerID: c.containerID(),
	}
	c.running, c.ready, c.cmd = false, false, nil
}

// signal sends sig to the container's process. It goes through os.Process (a pidfd on
// Linux), never a bare pid: the process may have been reaped a moment ago by the goroutine
// waiting for it, and its pid reused by an unrelated process.
func (c *container) signal(sig syscall.Signal) error {
	if !c.running || c.cmd == nil {
		return nil
	}
	if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("container %q: signal %d: %w", c.spec.Name, sig, err)
	}
	return nil
}

// containerID names the process: there is no container runtime, so the id is the pid.
func (c *container) containerID() string {
	if c.pid <= 0 {
		return ""
	}
	return "rauta-devcluster://" + strconv.Itoa(c.pid)
}

// restartDelay is the kubelet's crash-loop backoff, shortened for a local cluster:
// 1s doubling up to 30s.
func restartDelay(restarts int32) time.Duration {
	d := time.Second
	for i := int32(0); i < restarts && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

func (c *container) snapshot() containerSnapshot {
	s := containerSnapshot{
		Name:           c.spec.Name,
		Image:          c.spec.Image,
		ContainerID:    c.containerID(),
		Running:        c.running,
		StartedAt:      c.startedAt,
		LastTerminated: c.lastTerminated,
		WaitingReason:  c.waitReason,
		WaitingMessage: c.waitMessage,
		Ready:          c.ready,
		Restarts:       c.restarts,
	}
	if c.image != nil {
		s.ImageID = imageRepository(c.spec.Image) + "@" + c.image.digest
	}
	switch {
	case c.running, c.waitReason != "":
		// Running again, or waiting to: the run that ended last is the previous one.
		s.LastTerminated = c.terminated
	case c.terminated != nil:
		s.Terminated = c.terminated
	}
	return s
}

// containerLogPath is where a container's output goes; the log endpoint reads it.
func containerLogPath(stateDir string, pod *corev1.Pod, name string) string {
	return filepath.Join(podDir(stateDir, pod), name+".log")
}

func podDir(stateDir string, pod *corev1.Pod) string {
	return filepath.Join(stateDir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}
