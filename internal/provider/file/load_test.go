package file

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/resources"
)

// TestLoadErrors checks every kind of mistake is reported with its file,
// line, object and field. Each want entry is one full error line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name: "unknown field with a typo",
			files: map[string]string{"gw.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    port: 80
    protocl: HTTP
`},
			want: []string{`gw.yaml:10: Gateway default/web: spec.listeners[0].protocl: unknown field (did you mean "protocol"?)`},
		},
		{
			name: "invalid regular expressions in an HTTPRoute",
			files: map[string]string{"route.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  rules:
  - matches:
    - path:
        type: RegularExpression
        value: "/(unclosed"
      headers:
      - name: x-ok
        type: RegularExpression
        value: "^fine$"
      - name: x-bad
        type: RegularExpression
        value: "[z-a]"
      queryParams:
      - name: q
        type: Exact
        value: "(not a regex, fine)"
`},
			want: []string{
				"route.yaml:10: HTTPRoute default/web: spec.rules[0].matches[0].path.value: invalid regular expression: error parsing regexp: missing closing ): `/(unclosed`",
				"route.yaml:17: HTTPRoute default/web: spec.rules[0].matches[0].headers[1].value: invalid regular expression: error parsing regexp: invalid character class range: `z-a`",
			},
		},
		{
			name: "field name in the wrong case",
			files: map[string]string{"gw.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
  namespace: edge
Spec:
  gatewayClassName: rauta
`},
			want: []string{`gw.yaml:6: Gateway edge/web: Spec: unknown field (did you mean "spec"?)`},
		},
		{
			name: "wrong type and out of range, both reported",
			files: map[string]string{"gw.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    port: eighty
    protocol: HTTP
  - name: other
    port: 99999999999
    protocol: [HTTP]
`},
			want: []string{
				`gw.yaml:9: Gateway default/web: spec.listeners[0].port: expected an integer, got the string "eighty"`,
				`gw.yaml:12: Gateway default/web: spec.listeners[1].port: 99999999999 is out of range for int32`,
				`gw.yaml:13: Gateway default/web: spec.listeners[1].protocol: expected a string, got a list`,
			},
		},
		{
			name: "a number where a string belongs",
			files: map[string]string{"svc.yaml": `
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    tier: 1
`},
			want: []string{`svc.yaml:6: Service default/web: metadata.labels.tier: expected a string, got the number 1`},
		},
		{
			name: "duplicate key",
			files: map[string]string{"route.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
  namespace: apps
spec:
  parentRefs:
  - name: web
  parentRefs:
  - name: other
`},
			want: []string{`route.yaml:9: HTTPRoute apps/r: spec.parentRefs: duplicate key "parentRefs" (first at line 7)`},
		},
		{
			name: "malformed YAML, other files still read",
			files: map[string]string{
				"a.yaml": `
apiVersion: v1
kind: Service
metadata:
  name: [web
`,
				"b.yaml": `
apiVersion: v1
kind: Service
metadata:
  name: web
  bogus: 1
`,
			},
			want: []string{
				`a.yaml:4: malformed YAML: did not find expected ',' or ']'`,
				`b.yaml:5: Service default/web: metadata.bogus: unknown field`,
			},
		},
		{
			name:  "malformed JSON",
			files: map[string]string{"svc.json": `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}`},
			want:  []string{`svc.json:1: malformed YAML: did not find expected ',' or '}'`},
		},
		{
			name: "same object twice in two files",
			files: map[string]string{
				"a.yaml":     gatewayClass,
				"sub/b.yaml": "# again\n---" + gatewayClass,
			},
			want: []string{`sub/b.yaml:3: GatewayClass rauta: defined twice, first at a.yaml:1`},
		},
		{
			name:  "same object twice, namespace defaulted in one",
			files: map[string]string{"gw.yaml": gateway + "---" + strings.Replace(gateway, "  name: web\n", "  name: web\n  namespace: default\n", 1)},
			want:  []string{`gw.yaml:12: Gateway default/web: defined twice, first at gw.yaml:1`},
		},
		{
			name: "ReferenceGrant v1 and v1beta1 are the same object",
			files: map[string]string{"grants.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: g, namespace: backends}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: backends}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]
  to: [{group: "", kind: Service}]
`},
			want: []string{`grants.yaml:8: ReferenceGrant backends/g: defined twice, first at grants.yaml:1`},
		},
		{
			name: "missing kind, apiVersion and name",
			files: map[string]string{"x.yaml": `
apiVersion: v1
metadata: {name: a}
---
kind: Service
metadata: {name: b}
---
apiVersion: v1
kind: Service
metadata: {namespace: x}
`},
			want: []string{
				`x.yaml:1: kind: missing or not a string`,
				`x.yaml:4: Service b: apiVersion: missing or not a string`,
				`x.yaml:7: Service x/(no name): metadata.name: required`,
			},
		},
		{
			name:  "document that is not an object",
			files: map[string]string{"x.yaml": "# a list by mistake\n- apiVersion: v1\n  kind: Service\n"},
			want:  []string{`x.yaml:2: expected an object (a mapping with apiVersion and kind), got a list`},
		},
		{
			name: "invalid base64 in a Secret",
			files: map[string]string{"secret.yaml": `
apiVersion: v1
kind: Secret
metadata:
  name: tls
type: kubernetes.io/tls
data:
  tls.crt: bm90IGJhc2U2NA==
  tls.key: "not base64!"
`},
			want: []string{`secret.yaml:8: Secret default/tls: data["tls.key"]: invalid base64: illegal base64 data at input byte 3`},
		},
		{
			name: "values that parse themselves",
			files: map[string]string{"svc.yaml": `
apiVersion: v1
kind: Service
metadata:
  name: web
  creationTimestamp: yesterday
spec:
  ports:
  - port: 80
    targetPort: true
`},
			want: []string{
				`svc.yaml:5: Service default/web: metadata.creationTimestamp: invalid value: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`,
				`svc.yaml:9: Service default/web: spec.ports[0].targetPort: invalid value: cannot unmarshal bool into Go value of type int32`,
			},
		},
		{
			name: "numbers JSON cannot hold",
			files: map[string]string{"gw.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
spec:
  gatewayClassName: rauta
  listeners:
  - {name: a, port: .inf, protocol: HTTP}
  - {name: b, port: 80.5, protocol: HTTP}
`},
			want: []string{
				`gw.yaml:8: Gateway default/web: spec.listeners[0].port: .inf is not a finite number (JSON has none)`,
				`gw.yaml:9: Gateway default/web: spec.listeners[1].port: expected an integer, got the number 80.5`,
			},
		},
		{
			name: "fraction where an integer belongs",
			files: map[string]string{"gw.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: b, port: 80.5, protocol: HTTP}
`},
			want: []string{`gw.yaml:7: Gateway default/web: spec.listeners[0].port: expected an integer, got the number 80.5`},
		},
		{
			name: "bad item inside a List",
			files: map[string]string{"list.yaml": `
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: apps}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: apps}
  spec: {type: 7}
`},
			want: []string{`list.yaml:10: Service apps/web: spec.type: expected a string, got the number 7`},
		},
		{
			name: "unknown field of a List",
			files: map[string]string{"list.yaml": `
apiVersion: v1
kind: List
itemz: []
`},
			want: []string{`list.yaml:3: List: itemz: unknown field`},
		},
		{
			name:  "alias bomb",
			files: map[string]string{"bomb.yaml": aliasBomb()},
			want: []string{
				`bomb.yaml:6: Namespace bomb: metadata.labels.a4[7][0][7][5][2]: aliases expand to more than 100000 values`,
				`bomb.yaml:6: Namespace bomb: metadata.labels.a0: expected a string, got a list`,
				`bomb.yaml:7: Namespace bomb: metadata.labels.a1: expected a string, got a list`,
				`bomb.yaml:8: Namespace bomb: metadata.labels.a2: expected a string, got a list`,
				`bomb.yaml:9: Namespace bomb: metadata.labels.a3: expected a string, got a list`,
				`bomb.yaml:10: Namespace bomb: metadata.labels.a4: expected a string, got a list`,
			},
		},
		{
			name:  "unknown anchor in the second document",
			files: map[string]string{"x.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: *meta\n"},
			want:  []string{`x.yaml:4: malformed YAML: unknown anchor 'meta' referenced`},
		},
		{
			name:  "syntax error on the first line",
			files: map[string]string{"x.yaml": "a: b: c\n"},
			want:  []string{`x.yaml:1: malformed YAML: mapping values are not allowed in this context`},
		},
		{
			name:  "scanner error further down",
			files: map[string]string{"x.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: a\n"},
			want:  []string{`x.yaml:4: malformed YAML: found character that cannot start any token`},
		},
		{
			name:  "alias that contains itself",
			files: map[string]string{"x.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nspec: &s {finalizers: [*s]}\n"},
			want: []string{
				"x.yaml:4: Namespace a: spec" + strings.Repeat(".finalizers[0]", 42) + ".finalizers: nested more than 128 levels deep",
				"x.yaml:4: Namespace a: spec.finalizers[0]: expected a string, got an object",
			},
		},
		{
			name: "YAML and type problems in one document, all reported",
			files: map[string]string{"svc.yaml": `
apiVersion: v1
kind: Service
metadata:
  name: web
  name: again
spec:
  ports: {port: 80}
`},
			want: []string{
				`svc.yaml:5: Service default/web: metadata.name: duplicate key "name" (first at line 4)`,
				`svc.yaml:7: Service default/web: spec.ports: expected a list, got an object`,
			},
		},
		{
			name:  "unsupported YAML tag",
			files: map[string]string{"x.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: !custom apps\n"},
			want:  []string{`x.yaml:4: Namespace (no name): metadata.name: unsupported YAML tag !custom`},
		},
		{
			name: "mistakes in several files all reported",
			files: map[string]string{
				"1.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labelz: {}}\n",
				"2.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\nspec: {finalizers: x}\n",
				"3.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: c}\nstatus: {phase: 1}\n",
			},
			want: []string{
				`1.yaml:3: Namespace a: metadata.labelz: unknown field (did you mean "labels"?)`,
				`2.yaml:4: Namespace b: spec.finalizers: expected a list, got the string "x"`,
				`3.yaml:4: Namespace c: status.phase: expected a string, got the number 1`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			t.Chdir(dir)
			res, _, err := Load(".")
			if err == nil {
				t.Fatalf("Load succeeded, want errors:\n%s", strings.Join(tt.want, "\n"))
			}
			if res != nil {
				t.Error("Load returned a snapshot together with an error")
			}
			if got := errorLines(err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var fe *Error
			if !errors.As(err, &fe) || fe.File == "" || fe.Line == 0 {
				t.Errorf("errors.As(*Error) = %+v", fe)
			}
		})
	}
}

// aliasBomb is the "billion laughs" document: 9 levels of 10 aliases each.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bomb\n  labels:\n")
	b.WriteString("    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 6; i++ {
		prev := "*a" + string(rune('0'+i-1))
		b.WriteString("    a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n")
	}
	b.WriteString("    x: [*a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6]\n")
	return b.String()
}

func TestLoadWarnings(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"mixed.yaml": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec: {anything: goes}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: old}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta, namespace: ignored}
spec: {controllerName: rauta.io/gateway-controller}
`})
	t.Chdir(dir)
	res, warnings, err := Load("mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	want := []string{
		"mixed.yaml:1: apps/v1 Deployment is not a kind RAUTA reads, ignored",
		"mixed.yaml:6: gateway.networking.k8s.io/v1beta1 HTTPRoute is not supported (use apiVersion gateway.networking.k8s.io/v1), ignored",
		`mixed.yaml:10: GatewayClass rauta is cluster-scoped; metadata.namespace "ignored" ignored`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(res.GatewayClasses) != 1 || res.GatewayClasses[0].Namespace != "" {
		t.Errorf("GatewayClasses = %+v", res.GatewayClasses)
	}
	if len(res.HTTPRoutes) != 0 {
		t.Error("ignored HTTPRoute was loaded")
	}
}

func TestLoadObjects(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"10-class.yaml":  gatewayClass,
		"20-gateway.yml": "# leading comment\n---\n---\n" + gateway + "---\n# only a comment\n",
		"30-route.json": `{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
 "metadata": {"name": "web", "namespace": "apps", "generation": 7},
 "spec": {"parentRefs": [{"name": "web", "namespace": "default"}],
          "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}`,
		"apps/list.yaml": `
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: apps}
- apiVersion: gateway.networking.k8s.io/v1beta1
  kind: ReferenceGrant
  metadata: {name: allow, namespace: apps}
  spec:
    from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
    to: [{group: "", kind: Service}]
`,
		"apps/svc.yaml": `
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: apps
  annotations:
    enabled: yes
  labels: &labels {app: web}
spec:
  ports:
  - &http {name: http, port: 80, targetPort: 8080}
  selector:
    <<: *labels
`,
		"apps/eps.yaml": `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: apps
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: ["10.0.0.1"]
  conditions: {ready: true}
`,
		"secret.yaml": `
apiVersion: v1
kind: Secret
metadata: {name: creds}
data:
  user: b2xk
  pass: c2VjcmV0
stringData:
  user: new
`,
		"README.md":         "not a manifest",
		".hidden.yaml":      "not: [valid",
		".git/config.yaml":  "not: [valid",
		"..data/inner.yaml": "not: [valid",
		"notes.yaml~":       "not: [valid",
		"apps/extra.txt":    "not: [valid",
	})
	// A symlinked file is read; a symlinked folder is not followed.
	if err := os.Symlink(filepath.Join(dir, "apps", "svc.yaml"), filepath.Join(dir, "linked-svc.yaml.bak")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "apps"), filepath.Join(dir, "zz-apps-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "10-class.yaml"), filepath.Join(dir, "sub-link.yaml")); err != nil {
		t.Fatal(err)
	}

	_, _, err := Load(dir)
	want := filepath.Join(dir, "sub-link.yaml") + ":1: GatewayClass rauta: defined twice, first at " + filepath.Join(dir, "10-class.yaml") + ":1"
	if err == nil || err.Error() != want {
		t.Fatalf("Load error = %v, want the symlinked copy reported as %s", err, want)
	}
	if err := os.Remove(filepath.Join(dir, "sub-link.yaml")); err != nil {
		t.Fatal(err)
	}

	res, warnings, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %v", warnings)
	}
	checkObjects(t, res)
}

func checkObjects(t *testing.T, res *resources.Resources) {
	t.Helper()
	if n := len(res.GatewayClasses) + len(res.Gateways) + len(res.HTTPRoutes) + len(res.Namespaces) +
		len(res.ReferenceGrants) + len(res.Services) + len(res.EndpointSlices) + len(res.Secrets); n != 8 {
		t.Fatalf("loaded %d objects, want 8: %+v", n, res)
	}
	gw := res.Gateways[0]
	if gw.Namespace != "default" || gw.Generation != 1 || gw.Spec.Listeners[0].Port != 80 || gw.Spec.GatewayClassName != "rauta" {
		t.Errorf("Gateway = %s/%s gen %d %+v", gw.Namespace, gw.Name, gw.Generation, gw.Spec)
	}
	if gw.APIVersion != "gateway.networking.k8s.io/v1" || gw.Kind != "Gateway" {
		t.Errorf("Gateway TypeMeta = %+v", gw.TypeMeta)
	}
	route := res.HTTPRoutes[0]
	if route.Namespace != "apps" || route.Generation != 7 || *route.Spec.ParentRefs[0].Namespace != "default" ||
		route.Spec.Rules[0].BackendRefs[0].Name != "web" || *route.Spec.Rules[0].BackendRefs[0].Port != 80 {
		t.Errorf("HTTPRoute = %+v", route)
	}
	grant := res.ReferenceGrants[0]
	if grant.APIVersion != "gateway.networking.k8s.io/v1" || grant.Spec.From[0].Namespace != "default" {
		t.Errorf("ReferenceGrant from v1beta1 = %+v", grant)
	}
	svc := res.Services[0]
	if svc.Annotations["enabled"] != "yes" {
		t.Errorf("annotation yes became %q; YAML 1.2 keeps it a string", svc.Annotations["enabled"])
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 || svc.Spec.Selector["app"] != "web" {
		t.Errorf("Service spec from merge key = %+v", svc.Spec)
	}
	eps := res.EndpointSlices[0]
	if eps.Endpoints[0].Addresses[0] != "10.0.0.1" || !*eps.Endpoints[0].Conditions.Ready || *eps.Ports[0].Port != 8080 {
		t.Errorf("EndpointSlice = %+v", eps)
	}
	secret := res.Secrets[0]
	if string(secret.Data["user"]) != "new" || string(secret.Data["pass"]) != "secret" || secret.StringData != nil {
		t.Errorf("Secret data = %q stringData = %v; stringData must win and be cleared", secret.Data, secret.StringData)
	}
	if res.Namespaces[0].Name != "apps" || res.Namespaces[0].Namespace != "" {
		t.Errorf("Namespace = %+v", res.Namespaces[0].ObjectMeta)
	}
}

// The snapshot is sorted by namespace and name, whatever the file layout.
func TestLoadSortsObjects(t *testing.T) {
	ns := func(name string) string {
		return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n---\n"
	}
	svc := func(namespace, name string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: " + namespace + "}\n---\n"
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml":   ns("zeta") + svc("b", "a") + svc("a", "z"),
		"b/c.yaml": ns("alpha") + svc("a", "b") + svc("", "m"),
	})
	res, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range res.Services {
		got = append(got, s.Namespace+"/"+s.Name)
	}
	for _, n := range res.Namespaces {
		got = append(got, n.Name)
	}
	if want := []string{"a/b", "a/z", "b/a", "default/m", "alpha", "zeta"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestLoadPathErrors(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing path: %v", err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yaml": gatewayClass})
	p := filepath.Join(dir, "a.yaml")
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root: an unreadable file cannot be made")
	}
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "a.yaml: read:") {
		t.Errorf("unreadable file: %v", err)
	}
}

// A file given by name is read whatever its extension; empty input is an
// empty snapshot, not an error.
func TestLoadSingleFileAndEmpty(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"gateway.conf": gateway, "empty/x.yaml": "# nothing\n"})
	res, _, err := Load(filepath.Join(dir, "gateway.conf"))
	if err != nil || len(res.Gateways) != 1 {
		t.Fatalf("Load(file) = %v, %v", res, err)
	}
	res, warnings, err := Load(filepath.Join(dir, "empty"))
	if err != nil || res == nil || len(res.Gateways)+len(res.Namespaces) != 0 || len(warnings) != 0 {
		t.Fatalf("Load(empty folder) = %+v, %v, %v", res, warnings, err)
	}
}
