package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveInStaysInsideTheRoot(t *testing.T) {
	dir := t.TempDir()
	for _, l := range []struct{ name, target string }{
		{"up", "../../../../etc"},
		{"abs", "/etc"},
		{"loop", "loop"},
		{"rel", "usr/lib"},
	} {
		if err := os.Symlink(l.target, filepath.Join(dir, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for in, want := range map[string]string{
		"/up/passwd":      "etc/passwd",
		"/abs/passwd":     "etc/passwd",
		"/../../x":        "x",
		"/rel/x/../y":     "usr/lib/y",
		"/":               ".",
		"/var/run/secret": "var/run/secret",
	} {
		if got, err := resolveIn(r, in); err != nil || got != want {
			t.Errorf("resolveIn(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := resolveIn(r, "/loop/x"); err == nil {
		t.Error("symlink loop: want an error")
	}
	if err := writeFileIn(r, "/up/hosts", []byte("x"), 0o644, -1); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc", "hosts")); err != nil || string(b) != "x" {
		t.Errorf("write through an escaping symlink: %q, %v; want it inside the root", b, err)
	}
}
