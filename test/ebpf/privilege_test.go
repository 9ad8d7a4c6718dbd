package ebpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/observe/capture"
)

const helperEnv = "RAUTA_EBPF_TEST_HELPER"

// TestHelperLoadWithoutCapabilities is the child of
// TestMissingCapabilitiesGiveAClearError; alone it does nothing.
func TestHelperLoadWithoutCapabilities(t *testing.T) {
	if os.Getenv(helperEnv) != "load" {
		return
	}
	_, err := capture.Load(capture.LoadOptions{})
	fmt.Printf("permission=%v\nerror=%v\n", errors.Is(err, capture.ErrPermission), err)
}

// TestMissingCapabilitiesGiveAClearError runs the loader with every
// capability dropped and checks the error names what is missing.
func TestMissingCapabilitiesGiveAClearError(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("SKIP: setpriv (util-linux) not installed; cannot drop capabilities for this test")
	}
	cmd := exec.Command("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all",
		os.Args[0], "-test.run=^TestHelperLoadWithoutCapabilities$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=load")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "permission=true") || !strings.Contains(s, "CAP_BPF") {
		t.Fatalf("error without capabilities does not name them:\n%s", s)
	}
}
