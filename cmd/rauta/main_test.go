package main

import (
	"bytes"
	"os"
	"regexp"
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
	for mode, want := range map[string]string{"ingress": "controller", "observability": "observe", "mesh": "mesh"} {
		if got, err := modeCommand(mode); err != nil || got != want {
			t.Errorf("RAUTA_MODE=%s: %q, %v; want %q", mode, got, err, want)
		}
	}
	for _, mode := range []string{"", "gateway"} {
		if _, err := modeCommand(mode); err == nil {
			t.Errorf("RAUTA_MODE=%q: no error", mode)
		}
	}
}

// TestReferenceDocIsCurrent: docs/reference.md holds every command's help as
// the binary prints it (hack/reference.sh regenerates it).
func TestReferenceDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, c := range []string{"run", "controller", "dataplane", "observe", "mesh"} {
		var out, help bytes.Buffer
		_ = run([]string{c, "-h"}, &out, &help)
		text := regexp.MustCompile(`\(default "[^"]*-[0-9]+"\)\n`).ReplaceAllString(help.String(), "(default \"<hostname>-<pid>\")\n")
		text = strings.ReplaceAll(text, `(default "`+host+`")`, `(default "<hostname>")`)
		section := "## rauta " + c + "\n\n```\n" + text + "```\n"
		if !strings.Contains(string(doc), section) {
			t.Errorf("docs/reference.md does not hold the current help of %q; run hack/reference.sh", c)
		}
	}
}
