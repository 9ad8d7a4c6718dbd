package file

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the decoder as one manifest file. It must
// never panic, must return either a snapshot or errors of type *Error, and
// the type checker must find every problem before the decoder does.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		gatewayClass,
		gateway + "---" + gatewayClass,
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: aGk=}\nstringData: {j: x}\n",
		`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}]}}`,
		"a: &a [*a]\n",
		"metadata: &m {name: x}\napiVersion: v1\nkind: Namespace\nspec: {<<: [*m, *m]}\n",
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n",
		"- [\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: w, creationTimestamp: 2024-01-01}\nspec: {ports: [{port: 1e3}]}\n",
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [{matches: [{path: {type: PathPrefix, value: /}}], timeouts: {request: 10s}}]}\n",
		"---\n--- !!binary aGk=\n...\n",
		aliasBomb(),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, warnings, err := parse([]source{{name: "fuzz.yaml", data: data}}, nil)
		if err == nil {
			if res == nil {
				t.Fatal("no error and no snapshot")
			}
			return
		}
		if res != nil {
			t.Fatal("snapshot returned with an error")
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml:") {
				t.Fatalf("error line without the file: %q", line)
			}
			// The type checker must catch everything the strict decoder
			// would, so that every error has its precise line and path.
			if strings.Contains(line, ": decode: ") {
				t.Fatalf("decoder error the checker missed: %q", line)
			}
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.Line < 1 {
			t.Fatalf("error is not an *Error with a line: %v", err)
		}
		for _, w := range warnings {
			if w.File != "fuzz.yaml" || w.Line < 1 {
				t.Fatalf("warning %+v", w)
			}
		}
	})
}
