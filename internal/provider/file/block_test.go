package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// blockSeeds are inputs around the edges of what the fast path reads.
var blockSeeds = []string{
	gatewayClass,
	gateway + "---" + gatewayClass,
	"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n    app.kubernetes.io/name: x\n    n: '42'\n    b: \"true\"\n",
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n  -   name: b\n      port: 0x50\n",
	"a:\n- - x\n  - y\n-\n  b: 1\n- c\n",
	"a: 1\nb: 1.5\nc: -2\nd: 1e3\ne: .5\nf: 0o17\ng: 017\nh: 1_000\ni: 2024-01-01\nj: null\nk: ~\nl: true\nm: False\nn: yes\no: .inf\np: 127.0.0.1\n",
	"a: 'it''s'\nb: \"x: y # z\"\nc: 'a # b'\nd: {}\ne: []\nf: x:y\ng: -x\nh: ?x\ni: a, b [c] {d}\n",
	"a: b # comment\n",
	"# head\na: 1 \n\n  # indented comment\nb:   2\n---\n# only a comment\n---\nc: 3\n...\n",
	"a: |\n  text\n",
	"a: multi\n  line\n",
	"a:\nb: 1\n",
	"a: 1\n b: 2\n",
	"- a\n - b\n",
	"a: &x 1\nb: *x\n",
	"a: !!str 1\n",
	"key : v\n",
	"\"q\": 1\n",
	"a:\n  - b\n  c: 1\n",
	"a:\n- b\nc: d\n",
	"x\n",
	"a: b: c\n",
	"a: \"unterminated\n",
	"a: 'x' y\n",
	"a: \"\\u00e9\"\n",
	"a: café ü\n",
	"a: x\u2028y\n",
	"a:\tb\n",
	"a: 1\r\nb: 2\r\n",
	"\ufeffa: 1\n",
	"--- \na: 1\n---  \nb: 2",
	"---\n- a\n--- x\n",
	"<<: {a: 1}\n",
	"a: 1\n<<: 2\n",
	"0: <<\n",
	"- <<\n",
	"a:\n  b:\n    c:\n      - d: 1\n        e:\n        - f\n",
	"a: 'x''\n",
	"a: ''\nb: \"\"\n",
	"a: -\n",
	"a: - b\n",
	"a: :x\n",
	"a: x:\n",
	"0: zero\n1.5: x\ntrue: y\nnull: z\n",
	"a: [1, 2]\n",
	"a: *x\n",
	"a: b\n  # comment deeper\nc: d\n",
	"a:\n  # comment\n  b: 1\n",
	"%YAML 1.2\n---\na: 1\n",
	"a:\n  " + strings.Repeat("k", 1030) + ": v\n",
	"- " + strings.Repeat("k", 1030) + ": v\n",
	"a: " + strings.Repeat("v", 5000) + "\n",
	deepBlock(200),
	"a: 0b101\nb: +1\nc: -0\nd: 1__0\ne: 0x_1\nf: 9223372036854775808\ng: 1e400\nh: 12:30:00\ni: 2001-12-14t21:59:43.10-05:00\n",
}

// TestBlockTrees: every document the fast path reads is the tree yaml.v3
// builds (kinds, resolved tags, values, quoting and flow styles, lines,
// columns), and a stream it reads whole yaml.v3 reads without error.
func TestBlockTrees(t *testing.T) {
	for _, s := range append(blockSeeds, string(routeManifests(t, 40))) {
		checkBlockTrees(t, []byte(s))
	}
}

// TestBlockLoadSame: the loader gives the same snapshot, warnings and
// errors with and without the fast path.
func TestBlockLoadSame(t *testing.T) {
	for _, s := range append(blockSeeds, string(routeManifests(t, 40)), gateway+"---\n"+"a: |\n  x\n---\n"+gatewayClass) {
		checkLoadSame(t, []byte(s))
	}
}

// TestBlockReadsGenerated: the generated manifests of bench/routegen, as
// the data plane benchmark reads them, take the fast path entirely.
func TestBlockReadsGenerated(t *testing.T) {
	data := routeManifests(t, 40)
	docs := 0
	for off, line := 0, 1; off < len(data); docs++ {
		lines, next, nextLine, ok := nextDocument(data, off, line)
		if ok && len(lines) == 0 {
			break
		}
		if _, read := parseBlockDocument(lines); !ok || !read {
			t.Fatalf("document at line %d not read by the fast path", line)
		}
		off, line = next, nextLine
	}
	if want := 2 + 2 + 3*40; docs != want { // class, gateway, 2 namespaces; route, Service, slice each
		t.Fatalf("%d documents read, want %d", docs, want)
	}
}

func FuzzBlock(f *testing.F) {
	for _, s := range blockSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBlockTrees(t, data)
		checkLoadSame(t, data)
	})
}

func checkLoadSame(t *testing.T, data []byte) {
	t.Helper()
	src := []source{{name: "f.yaml", data: data}}
	res, warnings, err := parse(src, nil)
	slow := newLoader(nil)
	slow.yamlOnly = true
	wantRes, wantWarnings, wantErr := slow.load(src)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("%q: error\n%v\nwant (yaml.v3 only)\n%v", data, err, wantErr)
	}
	if !reflect.DeepEqual(res, wantRes) || !reflect.DeepEqual(warnings, wantWarnings) {
		t.Fatalf("%q: snapshot or warnings differ from yaml.v3's\n%+v\n%+v", data, warnings, wantWarnings)
	}
}

func checkBlockTrees(t *testing.T, data []byte) {
	t.Helper()
	for off, line := 0, 1; off < len(data); {
		lines, next, nextLine, ok := nextDocument(data, off, line)
		if !ok || len(lines) == 0 {
			return
		}
		doc, ok := parseBlockDocument(lines)
		if !ok {
			return
		}
		// yaml.v3 on the same document, at the same lines.
		text := append(bytes.Repeat([]byte("\n"), line-1), data[off:next]...)
		var want yaml.Node
		dec := yaml.NewDecoder(bytes.NewReader(text))
		if err := decodeOne(dec, &want); err != nil {
			t.Fatalf("%q: fast path read a document yaml.v3 rejects: %v", text, err)
		}
		// Empty documents (comments between "---") come first in yaml.v3.
		for want.Kind == yaml.DocumentNode && len(want.Content) == 1 && want.Content[0].Kind == yaml.ScalarNode && want.Content[0].ShortTag() == "!!null" {
			want = yaml.Node{}
			if err := decodeOne(dec, &want); err != nil {
				t.Fatalf("%q: %v", text, err)
			}
		}
		if diff := nodeDiff(doc.Content[0], want.Content[0], "$"); diff != "" {
			t.Fatalf("%q: fast path tree differs from yaml.v3's: %s", text, diff)
		}
		var extra yaml.Node
		if err := decodeOne(dec, &extra); !errors.Is(err, io.EOF) && (err != nil || !isEmptyDoc(&extra)) {
			t.Fatalf("%q: yaml.v3 sees more in the document: %v", text, err)
		}
		off, line = next, nextLine
	}
}

func decodeOne(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return dec.Decode(n)
}

func isEmptyDoc(n *yaml.Node) bool {
	return n.Kind == yaml.DocumentNode && (len(n.Content) == 0 || (len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode && n.Content[0].ShortTag() == "!!null" && n.Content[0].Value == ""))
}

// nodeDiff names the first difference in what the converter reads.
func nodeDiff(got, want *yaml.Node, path string) string {
	const styles = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle | yaml.FlowStyle | yaml.TaggedStyle
	switch {
	case got.Kind != want.Kind:
		return fmt.Sprintf("%s: kind %v, want %v", path, got.Kind, want.Kind)
	case got.ShortTag() != want.ShortTag() || got.Tag != want.Tag:
		return fmt.Sprintf("%s: tag %s (%s), want %s (%s)", path, got.ShortTag(), got.Tag, want.ShortTag(), want.Tag)
	case got.Value != want.Value:
		return fmt.Sprintf("%s: value %q, want %q", path, got.Value, want.Value)
	case got.Style&styles != want.Style&styles:
		return fmt.Sprintf("%s: style %v, want %v", path, got.Style, want.Style)
	case got.Line != want.Line || got.Column != want.Column:
		return fmt.Sprintf("%s: at %d:%d, want %d:%d", path, got.Line, got.Column, want.Line, want.Column)
	case got.Alias != nil || want.Alias != nil || got.Anchor != "" || want.Anchor != "":
		return path + ": alias or anchor"
	case len(got.Content) != len(want.Content):
		return fmt.Sprintf("%s: %d children, want %d", path, len(got.Content), len(want.Content))
	}
	for i := range got.Content {
		if d := nodeDiff(got.Content[i], want.Content[i], fmt.Sprintf("%s/%d", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// deepBlock is a mapping nested n levels deep, in block style.
func deepBlock(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	b.WriteString(strings.Repeat(" ", n) + "b: 1\n")
	return b.String()
}
