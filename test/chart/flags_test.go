package chart_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/false-systems/rauta/internal/provision"
)

// notYetInCommand are flags and environment variables the chart passes
// although the command does not have them yet: the interface agreed for
// the chart, still to be implemented. The test fails when one appears, so
// this list only shrinks.
var notYetInCommand = map[string]string{}

// TestChartMatchesCommands builds cmd/rauta and checks that every flag the
// chart passes, and every RAUTA_ variable it sets, is one the command
// reads: a renamed flag would otherwise stop the pod from starting. It also
// parses the rendered GatewayParameters with the provisioner's own strict
// parser.
func TestChartMatchesCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/rauta; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "rauta")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rauta")
	build.Dir = filepath.Join(chartDir(t), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rauta: %v\n%s", err, out)
	}
	known := map[string]map[string]bool{}
	for _, cmd := range []string{"controller", "observe"} {
		known[cmd] = commandInputs(t, bin, cmd)
	}

	seen := map[string]bool{}
	for _, vals := range []map[string]any{nil, allOptional(), nodeModeValues(true), nodeModeValues(false), dataPlaneJoinValues()} {
		r := mustRender(t, vals)
		for name, tmpl := range podTemplates(r) {
			for _, c := range tmpl.Spec.Containers {
				checkContainer(t, name, c, known, seen)
			}
		}
		for _, o := range r.objects {
			u, ok := o.(*unstructured.Unstructured)
			if !ok || u.GetKind() != "GatewayParameters" {
				continue
			}
			if _, err := provision.ParseParameters(u); err != nil {
				t.Errorf("the provisioner refuses the rendered GatewayParameters %s: %v", u.GetName(), err)
			}
		}
	}
	for input, why := range notYetInCommand {
		if !seen[input] {
			t.Errorf("%s (%s) is no longer passed by the chart: remove it from notYetInCommand", input, why)
		}
	}
}

// commandInputs runs `rauta CMD -h` and returns its flags ("-name") and the
// environment variables it reads ("RAUTA_NAME" for every flag, and any
// "(env NAME)" its help names).
func commandInputs(t *testing.T, bin, cmd string) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	c := exec.Command(bin, cmd, "-h")
	c.Stdout, c.Stderr = &out, &out
	_ = c.Run() // -h exits non-zero
	inputs := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		inputs["-"+m[1]] = true
		if cmd == "controller" { // cmd/rauta's common flags: RAUTA_<FLAG>
			inputs["RAUTA_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
		}
	}
	for _, m := range regexp.MustCompile(`\(env ([A-Z_]+)\)`).FindAllStringSubmatch(out.String(), -1) {
		inputs[m[1]] = true
	}
	if len(inputs) < 10 {
		t.Fatalf("rauta %s -h lists only %v:\n%s", cmd, inputs, out.String())
	}
	return inputs
}

// checkContainer checks a container's subcommand, flags and RAUTA_/known
// environment variables against what that subcommand reads.
func checkContainer(t *testing.T, workload string, c corev1.Container, known map[string]map[string]bool, seen map[string]bool) {
	t.Helper()
	if len(c.Args) == 0 {
		t.Errorf("%s: no subcommand", workload)
		return
	}
	cmd := c.Args[0]
	inputs, ok := known[cmd]
	if !ok {
		t.Errorf("%s: subcommand %q not checked", workload, cmd)
		return
	}
	check := func(input string) {
		k := cmd + " " + input
		seen[k] = true
		if _, pending := notYetInCommand[k]; pending {
			if inputs[input] {
				t.Errorf("rauta %s now reads %s: remove it from notYetInCommand", cmd, input)
			}
			return
		}
		if !inputs[input] {
			t.Errorf("%s: rauta %s does not read %s", workload, cmd, input)
		}
	}
	for _, a := range c.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: positional argument %q", workload, a)
			continue
		}
		name, _, _ := strings.Cut(a, "=")
		check(name)
	}
	for _, e := range c.Env {
		switch {
		case e.Name == "NODE_IP", e.Name == "GOMAXPROCS":
			// NODE_IP feeds $(NODE_IP) in args; GOMAXPROCS is the test's extraEnv.
		case strings.HasPrefix(e.Name, "RAUTA_"), inputs[e.Name]:
			check(e.Name)
		default:
			t.Errorf("%s: environment variable %s is read by nothing", workload, e.Name)
		}
	}
}
