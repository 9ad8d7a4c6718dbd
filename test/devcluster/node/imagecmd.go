package node

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// defaultPath is the PATH a container gets when neither the image nor the pod sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerArgv applies Kubernetes' rules to an image's Entrypoint and Cmd: command
// replaces the Entrypoint and, when set, drops the image's Cmd; args replaces the Cmd.
// $(VAR) references in command and args expand from the container's env.
func containerArgv(entrypoint, cmd, command, args []string, vars map[string]string) ([]string, error) {
	var argv []string
	switch {
	case len(command) > 0:
		argv = append(expandAll(command, vars), expandAll(args, vars)...)
	case len(args) > 0:
		argv = append(append([]string(nil), entrypoint...), expandAll(args, vars)...)
	default:
		argv = append(append([]string(nil), entrypoint...), cmd...)
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("no command specified: the image has no Entrypoint or Cmd and the container no command")
	}
	return argv, nil
}

func expandAll(in []string, vars map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expandEnv(s, vars)
	}
	return out
}

// mergeEnv is the environment of an image container: the image config's Env, then the
// container's env, a container variable replacing an image variable of the same name in
// place (as containerd does).
func mergeEnv(image, container []string) []string {
	out := make([]string, 0, len(image)+len(container))
	index := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		add(kv)
	}
	for _, kv := range container {
		add(kv)
	}
	return out
}

// withEnvDefaults adds what a container runtime sets when nothing else does: HOSTNAME (the
// pod name) and a standard PATH.
func withEnvDefaults(env []string, hostname string) []string {
	vars := envMap(env)
	if _, ok := vars["HOSTNAME"]; !ok {
		env = append(env, "HOSTNAME="+hostname)
	}
	if _, ok := vars["PATH"]; !ok {
		env = append(env, "PATH="+defaultPath)
	}
	return env
}

// ambientCaps turns securityContext.capabilities.add into ambient capabilities, which a
// non-root process keeps across execve (e.g. NET_BIND_SERVICE to listen on :80). A root
// process has every capability anyway; drop is not enforced.
func ambientCaps(sc *corev1.SecurityContext) ([]uintptr, error) {
	if sc == nil || sc.Capabilities == nil {
		return nil, nil
	}
	var caps []uintptr
	for _, c := range sc.Capabilities.Add {
		name := strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_")
		n, ok := capabilityNumbers[name]
		if !ok {
			return nil, fmt.Errorf("capability %q is not known to the devcluster node", c)
		}
		caps = append(caps, n)
	}
	return caps, nil
}

var capabilityNumbers = map[string]uintptr{
	"CHOWN": unix.CAP_CHOWN, "DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE, "DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH,
	"FOWNER": unix.CAP_FOWNER, "FSETID": unix.CAP_FSETID, "KILL": unix.CAP_KILL, "SETGID": unix.CAP_SETGID,
	"SETUID": unix.CAP_SETUID, "SETPCAP": unix.CAP_SETPCAP, "NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"NET_BROADCAST": unix.CAP_NET_BROADCAST, "NET_ADMIN": unix.CAP_NET_ADMIN, "NET_RAW": unix.CAP_NET_RAW,
	"IPC_LOCK": unix.CAP_IPC_LOCK, "SYS_CHROOT": unix.CAP_SYS_CHROOT, "SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"SYS_ADMIN": unix.CAP_SYS_ADMIN, "SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "SYS_TIME": unix.CAP_SYS_TIME,
	"MKNOD": unix.CAP_MKNOD, "AUDIT_WRITE": unix.CAP_AUDIT_WRITE, "SETFCAP": unix.CAP_SETFCAP,
	"PERFMON": unix.CAP_PERFMON, "BPF": unix.CAP_BPF, "CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// parseStopSignal reads an image config's StopSignal ("SIGINT", "INT" or "2"); empty means
// SIGTERM, as in containerd.
func parseStopSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("image StopSignal %q is not a signal", s)
}
