package file

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Large manifests (10,000 HTTPRoutes with their Services and EndpointSlices
// are 17 MB) spent most of their load time in yaml.v3's scanner and parser.
// What tools write (kubectl, sigs.k8s.io/yaml, Helm, most hands) is a small
// part of YAML: block mappings and sequences, one scalar per line, plain or
// quoted on one line, "{}" and "[]". blockParser reads exactly that part
// into the yaml.Node tree yaml.v3 would build (the same kinds, values,
// styles and lines, and plain scalars resolved by yaml.v3 itself through
// Node.ShortTag), and declines anything else: anchors, aliases, tags, block
// and multi-line scalars, flow collections with content, comments after a
// value, escapes, tabs, directives, anything malformed. A declined
// document and the rest of its file go to yaml.v3, so every error message
// is yaml.v3's. fuzz_test.go checks the trees against yaml.v3's.

// blockLine is one line of a document: its 1-based number, the column of
// its first character and the text from there, without trailing spaces.
type blockLine struct {
	num    int
	indent int
	text   string
}

// blockParser reads one document's lines; ok turns false at the first
// thing it does not read.
type blockParser struct {
	lines []blockLine
	pos   int
	ok    bool
	// depth is the collections open; deeper than maxDepth is yaml.v3's
	// and the converter's to report.
	depth int
}

// nextDocument splits the document starting at byte off of data (which
// starts a line numbered line) off the stream: its lines without blank and
// comment lines, where the next document starts, and that one's first
// line. A "---" line ends a document (and starts the next); ok is false
// when the stream has something the fast path does not split ("..." or a
// directive, a tab, CR, a byte order mark).
func nextDocument(data []byte, off, line int) (lines []blockLine, next, nextLine int, ok bool) {
	// The lines' text is cut from one string of the rest of the stream up
	// to the next "---", converted once.
	var doc string
	docOff := 0
	for off < len(data) {
		end := bytes.IndexByte(data[off:], '\n')
		var raw []byte
		if end < 0 {
			raw, end = data[off:], len(data)
		} else {
			raw, end = data[off:off+end], off+end+1
		}
		if bytes.HasPrefix(raw, []byte("---")) && (len(raw) == 3 || raw[3] == ' ') {
			if len(bytes.TrimRight(raw[3:], " ")) > 0 {
				return nil, 0, 0, false // content after "---"
			}
			if len(lines) > 0 {
				return lines, off, line, true
			}
			off, line = end, line+1
			continue
		}
		if !blockText(raw) || bytes.HasPrefix(raw, []byte("...")) || bytes.HasPrefix(raw, []byte("%")) {
			return nil, 0, 0, false
		}
		if doc == "" || off-docOff+len(raw) > len(doc) {
			// Up to the next line starting with "---" (maybe not a
			// marker: then again from the line after it).
			docEnd := len(data)
			if i := bytes.Index(data[off:], []byte("\n---")); i >= 0 {
				docEnd = max(off+i+1, end)
			}
			doc, docOff = string(data[off:docEnd]), off
		}
		text := strings.TrimRight(doc[off-docOff:off-docOff+len(raw)], " ")
		indent := len(text) - len(strings.TrimLeft(text, " "))
		if indent < len(text) && text[indent] != '#' {
			lines = append(lines, blockLine{num: line, indent: indent, text: text[indent:]})
		}
		off, line = end, line+1
	}
	return lines, len(data), line, true
}

// parseBlockDocument returns the document node of lines, or false.
func parseBlockDocument(lines []blockLine) (*yaml.Node, bool) {
	if len(lines) == 0 {
		return nil, false
	}
	p := &blockParser{lines: lines, ok: true}
	first := lines[0]
	if first.indent != 0 || !startsCollection(first.text) {
		return nil, false
	}
	root := p.block(0)
	if !p.ok || p.pos != len(lines) {
		return nil, false
	}
	return &yaml.Node{Kind: yaml.DocumentNode, Line: root.Line, Column: 1, Content: []*yaml.Node{root}}, true
}

// startsCollection reports whether a line opens a mapping or a sequence.
func startsCollection(text string) bool {
	if isDash(text) {
		return true
	}
	_, _, ok := splitKey(text)
	return ok
}

func isDash(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// block reads the mapping or sequence whose first line is the current one,
// at column indent.
func (p *blockParser) block(indent int) *yaml.Node {
	if isDash(p.lines[p.pos].text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

func (p *blockParser) fail() *yaml.Node {
	p.ok = false
	return &yaml.Node{Kind: yaml.ScalarNode}
}

func (p *blockParser) mapping(indent int) *yaml.Node {
	if p.depth++; p.depth > maxDepth {
		return p.fail()
	}
	defer func() { p.depth-- }()
	first := p.lines[p.pos]
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: first.num, Column: indent + 1}
	for p.ok && p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < indent {
			break
		}
		if l.indent > indent || isDash(l.text) {
			return p.fail() // a sequence at the keys' column ends nothing here
		}
		key, rest, ok := splitKey(l.text)
		if !ok {
			return p.fail()
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: key, Line: l.num, Column: indent + 1}
		k.Tag = k.ShortTag()
		n.Content = append(n.Content, k)
		p.pos++
		if rest == "" {
			n.Content = append(n.Content, p.nested(indent, true))
			continue
		}
		// Columns count characters; only a key can have non-ASCII ones.
		n.Content = append(n.Content, p.scalar(rest, l.num, indent+utf8.RuneCountInString(l.text[:len(l.text)-len(rest)])+1))
		p.endOfValue(indent)
	}
	return n
}

func (p *blockParser) sequence(indent int) *yaml.Node {
	if p.depth++; p.depth > maxDepth {
		return p.fail()
	}
	defer func() { p.depth-- }()
	first := p.lines[p.pos]
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: first.num, Column: indent + 1}
	for p.ok && p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < indent || (l.indent == indent && !isDash(l.text)) {
			break
		}
		if l.indent > indent {
			return p.fail()
		}
		if l.text == "-" {
			p.pos++
			n.Content = append(n.Content, p.nested(indent, false))
			continue
		}
		rest := strings.TrimLeft(l.text[2:], " ")
		col := indent + len(l.text) - len(rest)
		if startsCollection(rest) {
			// "- key: value" or "- - item": the item is a collection
			// whose first line starts after the dash.
			p.lines[p.pos] = blockLine{num: l.num, indent: col, text: rest}
			n.Content = append(n.Content, p.block(col))
			continue
		}
		p.pos++
		n.Content = append(n.Content, p.scalar(rest, l.num, col+1))
		p.endOfValue(indent)
	}
	return n
}

// nested reads the value of a key or dash that ended its line: a
// collection on the lines below, more indented; under a key, also a
// sequence at the key's column. Anything else (an empty value) is declined.
func (p *blockParser) nested(indent int, underKey bool) *yaml.Node {
	if p.pos >= len(p.lines) {
		return p.fail()
	}
	l := p.lines[p.pos]
	switch {
	case l.indent > indent:
		return p.block(l.indent)
	case underKey && l.indent == indent && isDash(l.text):
		return p.sequence(indent)
	}
	return p.fail()
}

// endOfValue declines a line more indented than the entry whose value
// ended the line before: that would continue a plain scalar.
func (p *blockParser) endOfValue(indent int) {
	if p.pos < len(p.lines) && p.lines[p.pos].indent > indent {
		p.ok = false
	}
}

// scalar reads a value written on one line at column col.
func (p *blockParser) scalar(text string, line, col int) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Line: line, Column: col}
	switch text[0] {
	case '"':
		// Without escapes, the text between the quotes is the value.
		if len(text) < 2 || text[len(text)-1] != '"' || strings.ContainsAny(text[1:len(text)-1], "\"\\") {
			return p.fail()
		}
		n.Tag, n.Style, n.Value = "!!str", yaml.DoubleQuotedStyle, text[1:len(text)-1]
		return n
	case '\'':
		inner, ok := singleQuoted(text)
		if !ok {
			return p.fail()
		}
		n.Tag, n.Style, n.Value = "!!str", yaml.SingleQuotedStyle, inner
		return n
	case '{', '[':
		switch text {
		case "{}":
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle, Line: line, Column: col}
		case "[]":
			return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Line: line, Column: col}
		}
		return p.fail()
	}
	// "<<" is yaml.v3's merge key wherever it stands (tag !!merge); the
	// fast path leaves it to yaml.v3 in values as it does in keys.
	if !plainScalar(text) || text == "<<" {
		return p.fail()
	}
	n.Value = text
	n.Tag = n.ShortTag() // yaml.v3's own resolution of plain scalars
	return n
}

// singleQuoted reads 'text' on one line, where ” stands for '.
func singleQuoted(text string) (string, bool) {
	if len(text) < 2 || text[len(text)-1] != '\'' {
		return "", false
	}
	inner := text[1 : len(text)-1]
	for i := 0; i < len(inner); i++ {
		if inner[i] == '\'' {
			if i+1 == len(inner) || inner[i+1] != '\'' {
				return "", false
			}
			i++
		}
	}
	return strings.ReplaceAll(inner, "''", "'"), true
}

// plainScalar reports whether text is a plain scalar the fast path reads
// as yaml.v3 does: no indicator first, no ": " or " #" inside, no ":" last.
func plainScalar(text string) bool {
	switch text[0] {
	case '-', '?', ':':
		if len(text) == 1 || text[1] == ' ' {
			return false
		}
	case ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
		return false
	}
	return !strings.Contains(text, ": ") && !strings.Contains(text, " #") && text[len(text)-1] != ':'
}

// splitKey splits "key: value" or "key:" into the key and the value text;
// false when text is not an entry with a plain key the fast path reads.
func splitKey(text string) (key, rest string, ok bool) {
	i := strings.Index(text, ": ")
	switch {
	case i >= 0:
		key, rest = text[:i], strings.TrimLeft(text[i+2:], " ")
	case text[len(text)-1] == ':':
		key = text[:len(text)-1]
	default:
		return "", "", false
	}
	// yaml.v3 (as libyaml) gives up on a key 1024 characters long.
	if key == "" || key == "<<" || len(key) > 1000 || !plainScalar(key) || strings.HasSuffix(key, " ") {
		return "", "", false
	}
	return key, rest, true
}

// blockText reports whether a line has only characters the fast path
// reads: printable ones as yaml.v3 counts them, without tabs, CR, the
// byte order mark, the Unicode line breaks (U+0085, U+2028, U+2029) or
// anything beyond U+FFFD.
func blockText(raw []byte) bool {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < 0x80 {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		switch {
		case r == utf8.RuneError, r < 0xa0, r == 0x2028, r == 0x2029, r == 0xfeff,
			r >= 0xd800 && r < 0xe000, r > 0xfffd:
			return false
		}
		i += size
	}
	return true
}
