package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"version"}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "rauta ") {
		t.Errorf("version: %v, %q", err, out.String())
	}
	if err := run([]string{"bogus"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), `unknown command "bogus"`) {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(nil, &out, &errOut); err == nil {
		t.Error("no command: want an error")
	}
	if err := run([]string{"run"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "-f is required") {
		t.Errorf("run without -f: %v", err)
	}
}

func TestModeCommand(t *testing.T) {
	for mode, want := range map[string]string{"ingress": "controller", "observability": "observe"} {
		if got, err := modeCommand(mode); err != nil || got != want {
			t.Errorf("RAUTA_MODE=%s: %q, %v; want %q", mode, got, err, want)
		}
	}
	for _, mode := range []string{"", "mesh", "gateway"} {
		if _, err := modeCommand(mode); err == nil {
			t.Errorf("RAUTA_MODE=%q: no error", mode)
		}
	}
}
