package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestEnvDefaultsFillOnlyFlagsNotGiven(t *testing.T) {
	t.Setenv("RAUTA_ADMIN_ADDR", "127.0.0.1:9999")
	t.Setenv("RAUTA_PORT_OFFSET", "8000")
	t.Setenv("RAUTA_LOG_LEVEL", "debug")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c common
	c.register(fs)
	if err := fs.Parse([]string{"-log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if err := envDefaults(fs); err != nil {
		t.Fatal(err)
	}
	if c.opts.AdminAddr != "127.0.0.1:9999" || c.opts.PortOffset != 8000 {
		t.Errorf("environment not applied: admin %q, offset %d", c.opts.AdminAddr, c.opts.PortOffset)
	}
	if c.logLevel != "warn" {
		t.Errorf("a flag on the command line must win over the environment: log level %q", c.logLevel)
	}
}

func TestEnvDefaultsRejectBadValues(t *testing.T) {
	t.Setenv("RAUTA_PORT_OFFSET", "eighty")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c common
	c.register(fs)
	_ = fs.Parse(nil)
	err := envDefaults(fs)
	if err == nil || !strings.Contains(err.Error(), "RAUTA_PORT_OFFSET") {
		t.Fatalf("want an error naming RAUTA_PORT_OFFSET, got %v", err)
	}
}

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
