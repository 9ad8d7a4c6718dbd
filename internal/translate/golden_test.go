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
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 60 {
		t.Fatalf("found %d golden cases, want at least 60", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			res, _, err := file.Load(in)
			if err != nil {
				t.Fatalf("load %s: %v", in, err)
			}
			got := golden{}
			r := Translate(res, Options{DefaultAddress: "127.0.0.1"})
			got.IR, got.Status = r.IR, r.Status

			outPath := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
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
			var want golden
			if err := decodeStrict(raw, &want); err != nil {
				t.Fatalf("decode %s: %v", outPath, err)
			}
			// PEM bytes are not written to golden files; they are checked by
			// the TLS tests.
			ignorePEM := cmpopts.IgnoreFields(ir.Certificate{}, "CertPEM", "KeyPEM")
			if diff := cmp.Diff(want, got, ignorePEM, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", outPath, diff)
			}
		})
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
