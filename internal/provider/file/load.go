package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/false-systems/rauta/internal/resources"
)

// Load reads one file, or every *.yaml, *.yml and *.json file in a folder
// (recursively, sorted by path; names starting with "." are skipped), each
// holding one or more YAML documents, into a Resources snapshot.
//
// Documents of kinds the provider does not read become Warnings. Any error
// makes Load return a nil snapshot and every problem found, joined.
func Load(path string) (*resources.Resources, []Warning, error) {
	names, err := listFiles(path)
	if err != nil {
		return nil, nil, err
	}
	srcs, readErrs := readFiles(names)
	return parse(srcs, readErrs)
}

// parse decodes the sources into one snapshot.
func parse(srcs []source, errs []error) (*resources.Resources, []Warning, error) {
	return newLoader(errs).load(srcs)
}

func newLoader(errs []error) *loader {
	return &loader{
		res:     &resources.Resources{},
		errs:    errs,
		seen:    make(map[string]string),
		checker: newChecker(),
	}
}

func (l *loader) load(srcs []source) (*resources.Resources, []Warning, error) {
	for _, src := range srcs {
		l.file(src)
	}
	if len(l.errs) > 0 {
		return nil, l.warnings, errors.Join(l.errs...)
	}
	sortResources(l.res)
	return l.res, l.warnings, nil
}

// loader accumulates one Load's snapshot, warnings and errors.
type loader struct {
	res      *resources.Resources
	warnings []Warning
	errs     []error
	seen     map[string]string // "Kind namespace/name" -> "file:line" of its first definition
	checker  *checker
	// yamlOnly reads every document with yaml.v3, not the block fast path
	// first (block.go); tests compare the two.
	yamlOnly bool
}

func (l *loader) file(src source) {
	if l.yamlOnly {
		l.yamlFile(src, 0, 0)
		return
	}
	// A document is delivered once the next one is read too: yaml.v3 looks
	// a few tokens ahead, so a syntax error at the start of a document
	// stops it before it delivers the one before. When the fast path
	// declines a document, yaml.v3 reads from the held one on, as it would
	// have, and reports what it would have.
	var held *yaml.Node
	heldOff, lastLine := 0, 0
	for off, line := 0, 1; off < len(src.data); {
		lines, next, nextLine, ok := nextDocument(src.data, off, line)
		if ok && len(lines) == 0 {
			break // blank lines and comments to the end
		}
		var doc *yaml.Node
		if ok {
			doc, ok = parseBlockDocument(lines)
		}
		if !ok {
			if held == nil {
				heldOff = off
			}
			l.yamlFile(src, heldOff, lastLine)
			return
		}
		if held != nil {
			lastLine = max(lastLine, maxLine(held))
			l.document(src.name, held)
		}
		held, heldOff = doc, off
		off, line = next, nextLine
	}
	if held != nil {
		l.document(src.name, held)
	}
}

// yamlFile reads the documents of src from byte off (the start of a line)
// with yaml.v3; lastLine is the last line of the documents read before.
// The bytes before off become empty lines, so lines keep their numbers.
func (l *loader) yamlFile(src source, off, lastLine int) {
	data := src.data
	if off > 0 {
		data = append(bytes.Repeat([]byte("\n"), bytes.Count(src.data[:off], []byte("\n"))), src.data[off:]...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		doc, err := decodeDocument(dec)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The parser cannot resynchronise after a syntax error, so the
			// rest of this file is skipped; other files are still read.
			line, msg := yamlErrorLine(err, lastLine+1)
			line = min(line, lineCount(src.data)) // the parser may point past the end
			l.errs = append(l.errs, &Error{File: src.name, Line: line, Message: "malformed YAML: " + msg})
			return
		}
		lastLine = max(lastLine, maxLine(doc))
		l.document(src.name, doc)
	}
}

// decodeDocument reads the next document, turning a panic of the YAML
// library on hostile input into an error.
func decodeDocument(dec *yaml.Decoder) (doc *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	doc = new(yaml.Node)
	err = dec.Decode(doc)
	return doc, err
}

// yamlErrorLine splits "yaml: line 3: did not find expected key" into its
// line and message. yaml.v3 prints the 0-based line of parser errors and the
// 1-based line of scanner errors, and no line when the 0-based one is 0 or
// the problem has no position (an unknown anchor); then fallback, the line
// after the last document read, is the best guess.
func yamlErrorLine(err error, fallback int) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, text, ok := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); ok && err == nil && n > 0 {
			if parserProblem(text) {
				n++
			}
			return n, text
		}
	}
	if strings.HasPrefix(msg, "unknown anchor") {
		return max(fallback, 1), msg
	}
	return 1, msg // a syntax error at 0-based line 0
}

// parserProblem reports whether msg is one of the parser's (not the
// scanner's) problems, from yaml.v3 parserc.go.
func parserProblem(msg string) bool {
	switch msg {
	case "did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected <document start>",
		"did not find expected <stream-start>", "did not find expected key",
		"did not find expected node content", "found duplicate %TAG directive",
		"found duplicate %YAML directive", "found incompatible YAML document",
		"found undefined tag handle":
		return true
	}
	return false
}

// lineCount is the number of lines of data, counting an unterminated last one.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return max(n, 1)
}

// maxLine is the last line any node of n is on.
func maxLine(n *yaml.Node) int {
	m := n.Line
	for _, c := range n.Content {
		m = max(m, maxLine(c))
	}
	return m
}

func objectKey(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

func sortResources(r *resources.Resources) {
	sortObjects(r.GatewayClasses)
	sortObjects(r.Gateways)
	sortObjects(r.ListenerSets)
	sortObjects(r.HTTPRoutes)
	sortObjects(r.GRPCRoutes)
	sortObjects(r.TLSRoutes)
	sortObjects(r.TCPRoutes)
	sortObjects(r.UDPRoutes)
	sortObjects(r.ReferenceGrants)
	sortObjects(r.BackendTLSPolicies)
	sortObjects(r.Services)
	sortObjects(r.EndpointSlices)
	sortObjects(r.Secrets)
	sortObjects(r.ConfigMaps)
	sortObjects(r.Namespaces)
}

// sortObjects orders by namespace and name, so the snapshot does not depend
// on how the objects are spread over files.
func sortObjects[T metav1.Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
}
