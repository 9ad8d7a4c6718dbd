package node

import (
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

func TestContainerArgv(t *testing.T) {
	entry, cmd := []string{"/rauta"}, []string{"controller", "-v"}
	vars := map[string]string{"MODE": "ingress"}
	tests := []struct {
		name          string
		entry, cmd    []string
		command, args []string
		want          []string
	}{
		{name: "image defaults", entry: entry, cmd: cmd, want: []string{"/rauta", "controller", "-v"}},
		{name: "args replace cmd", entry: entry, cmd: cmd, args: []string{"run", "$(MODE)"}, want: []string{"/rauta", "run", "ingress"}},
		{name: "command drops entrypoint and cmd", entry: entry, cmd: cmd, command: []string{"/rauta-dataplane"}, want: []string{"/rauta-dataplane"}},
		{name: "command and args", entry: entry, cmd: cmd, command: []string{"/bin/$(MODE)"}, args: []string{"$$(MODE)", "$(UNSET)"}, want: []string{"/bin/ingress", "$(MODE)", "$(UNSET)"}},
		{name: "cmd only image", cmd: []string{"/bin/echo-server"}, want: []string{"/bin/echo-server"}},
		{name: "args only image", cmd: []string{"/bin/echo-server"}, args: []string{"/bin/other"}, want: []string{"/bin/other"}},
	}
	for _, tt := range tests {
		got, err := containerArgv(tt.entry, tt.cmd, tt.command, tt.args, vars)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := containerArgv(nil, nil, nil, nil, vars); err == nil {
		t.Error("no entrypoint, cmd or command: want an error")
	}
}

func TestMergeEnv(t *testing.T) {
	image := []string{"PATH=/bin", "LANG=C", "MODE=image"}
	got := withEnvDefaults(mergeEnv(image, []string{"MODE=pod", "EXTRA=1"}), "pod-1")
	want := []string{"PATH=/bin", "LANG=C", "MODE=pod", "EXTRA=1", "HOSTNAME=pod-1"}
	if !slices.Equal(got, want) {
		t.Errorf("merged %q, want %q", got, want)
	}
	// Without a PATH anywhere, the runtime default; a container HOSTNAME is kept.
	got = withEnvDefaults(mergeEnv(nil, []string{"HOSTNAME=h"}), "pod-1")
	want = []string{"HOSTNAME=h", "PATH=" + defaultPath}
	if !slices.Equal(got, want) {
		t.Errorf("defaults %q, want %q", got, want)
	}
}

func TestAmbientCaps(t *testing.T) {
	sc := &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE", "CAP_NET_RAW"}, Drop: []corev1.Capability{"ALL"}}}
	caps, err := ambientCaps(sc)
	if err != nil || !slices.Equal(caps, []uintptr{unix.CAP_NET_BIND_SERVICE, unix.CAP_NET_RAW}) {
		t.Errorf("caps %v, %v", caps, err)
	}
	if _, err := ambientCaps(&corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"FLY"}}}); err == nil {
		t.Error("unknown capability: want an error")
	}
}

func TestParseStopSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "quit": syscall.SIGQUIT, "9": syscall.SIGKILL} {
		if got, err := parseStopSignal(in); err != nil || got != want {
			t.Errorf("parseStopSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "99"} {
		if _, err := parseStopSignal(bad); err == nil {
			t.Errorf("parseStopSignal(%q): want an error", bad)
		}
	}
}

func TestMayWriteAnyFile(t *testing.T) {
	for _, tt := range []struct {
		id   identity
		caps []uintptr
		want bool
	}{
		{identity{uid: 0}, nil, true},
		{identity{uid: 65532}, nil, false},
		{identity{uid: 65532}, []uintptr{unix.CAP_NET_BIND_SERVICE}, false},
		{identity{uid: 65532}, []uintptr{unix.CAP_NET_BIND_SERVICE, unix.CAP_DAC_OVERRIDE}, true},
		{identity{uid: 65532}, []uintptr{unix.CAP_FOWNER}, true},
	} {
		if got := mayWriteAnyFile(tt.id, tt.caps); got != tt.want {
			t.Errorf("mayWriteAnyFile(uid %d, caps %v) = %v, want %v", tt.id.uid, tt.caps, got, tt.want)
		}
	}
}
