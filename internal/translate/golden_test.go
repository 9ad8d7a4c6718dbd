package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/resources"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current translator")

// golden is what a testdata/NAME.out.yaml file holds.
type golden struct {
	IR     *ir.Snapshot `json:"ir"`
	Status *Status      `json:"status"`
}

// TestGolden translates every testdata/NAME.in.yaml and compares the IR and
// statuses with testdata/NAME.out.yaml. Run with -update to rewrite them, then
// read the diff: the golden files are the specification.
func TestGolden(t *testing.T) {
	eachCase(t, "testdata/*.in.yaml", 60, func(t *testing.T, res *resources.Resources, outPath string) {
		r := Translate(res, Options{DefaultAddress: "127.0.0.1"})
		// PEM bytes are not written to golden files; they are checked by
		// the TLS tests.
		checkGolden(t, outPath, golden(r), cmpopts.IgnoreFields(ir.Certificate{}, "CertPEM", "KeyPEM"))
	})
}

// eachCase runs check as a subtest on every NAME.in.yaml that glob finds
// (at least min of them), with its resources and its NAME.out.yaml path.
func eachCase(t *testing.T, glob string, min int, check func(t *testing.T, res *resources.Resources, outPath string)) {
	t.Helper()
	inputs, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < min {
		t.Fatalf("found %d golden cases (%s), want at least %d", len(inputs), glob, min)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			res, _, err := file.Load(in)
			if err != nil {
				t.Fatalf("load %s: %v", in, err)
			}
			check(t, res, strings.TrimSuffix(in, ".in.yaml")+".out.yaml")
		})
	}
}

// checkGolden compares got with the golden file outPath (strict decoding,
// empty and nil equal), or rewrites the file with -update.
func checkGolden[T any](t *testing.T, outPath string, got T, opts ...cmp.Option) {
	t.Helper()
	if *update {
		b, err := yaml.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(outPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	var want T
	if err := decodeStrict(raw, &want); err != nil {
		t.Fatalf("decode %s: %v", outPath, err)
	}
	if diff := cmp.Diff(want, got, append(opts, cmpopts.EquateEmpty())...); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", outPath, diff)
	}
}

func decodeStrict(raw []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
