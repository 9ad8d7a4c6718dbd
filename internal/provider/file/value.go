package file

import (
	"math"
	"strconv"

	"gopkg.in/yaml.v3"
)

// valueKind is the JSON data model, which is what Kubernetes objects are.
type valueKind uint8

const (
	nullValue valueKind = iota
	boolValue
	numberValue
	stringValue
	objectValue
	arrayValue
)

// value is a YAML node reduced to JSON data, with aliases and merge keys
// resolved and the line of every value and key kept for error messages.
type value struct {
	kind valueKind
	line int
	// text is "true"/"false", the JSON number (integral numbers in integer
	// form), or the string.
	text   string
	fields []field // objectValue, in document order, without duplicates
	items  []*value
}

type field struct {
	name string
	line int // of the key
	val  *value
}

// get returns the field named name, or nil; nil and non-objects have none.
func (v *value) get(name string) *value {
	if v == nil {
		return nil
	}
	for _, f := range v.fields {
		if f.name == name {
			return f.val
		}
	}
	return nil
}

// list returns the items of an array value, or nil for anything else.
func (v *value) list() []*value {
	if v == nil || v.kind != arrayValue {
		return nil
	}
	return v.items
}

// str returns the string value of field name, or "" when it is missing or
// not a string.
func (v *value) str(name string) string {
	if f := v.get(name); f != nil && f.kind == stringValue {
		return f.text
	}
	return ""
}

func (v *value) describe() string {
	switch v.kind {
	case nullValue:
		return "null"
	case boolValue:
		return v.text
	case numberValue:
		return "the number " + v.text
	case stringValue:
		return "the string " + strconv.Quote(v.text)
	case objectValue:
		return "an object"
	default:
		return "a list"
	}
}

// problem is an error found at a line and field path of one document.
type problem struct {
	line int
	path string
	msg  string
}

// Limits that keep a hostile or mistaken document (a YAML alias bomb, a
// runaway nesting) from exhausting memory or the stack. Values written out
// in the file are bounded by the file size; only alias expansions count
// against maxAliasValues.
const (
	maxAliasValues = 100_000
	maxDepth       = 128
)

// converter turns the yaml.Node tree of one document into values.
type converter struct {
	budget   int
	problems []problem
	stopped  bool // budget exhausted or too deep; reported once
}

func newConverter() *converter { return &converter{budget: maxAliasValues} }

func (c *converter) fail(line int, path, msg string) {
	c.problems = append(c.problems, problem{line: line, path: path, msg: msg})
}

// convert turns n into a value; aliased is true inside an alias expansion.
func (c *converter) convert(n *yaml.Node, path string, depth int, aliased bool) *value {
	if c.stopped {
		return &value{line: n.Line}
	}
	if depth > maxDepth {
		c.stopped = true
		c.fail(n.Line, path, "nested more than "+strconv.Itoa(maxDepth)+" levels deep")
		return &value{line: n.Line}
	}
	if aliased {
		c.budget--
		if c.budget < 0 {
			c.stopped = true
			c.fail(n.Line, path, "aliases expand to more than "+strconv.Itoa(maxAliasValues)+" values")
			return &value{line: n.Line}
		}
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			c.fail(n.Line, path, "alias without an anchor")
			return &value{line: n.Line}
		}
		// Values keep the lines of the anchored source, paths the place of use.
		return c.convert(n.Alias, path, depth+1, true)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &value{line: n.Line}
		}
		return c.convert(n.Content[0], path, depth+1, aliased)
	case yaml.SequenceNode:
		v := &value{kind: arrayValue, line: n.Line, items: make([]*value, 0, len(n.Content))}
		for i, item := range n.Content {
			v.items = append(v.items, c.convert(item, path+"["+strconv.Itoa(i)+"]", depth+1, aliased))
		}
		return v
	case yaml.MappingNode:
		return c.mapping(n, path, depth, aliased)
	case yaml.ScalarNode:
		return c.scalar(n, path)
	}
	c.fail(n.Line, path, "unsupported YAML node")
	return &value{line: n.Line}
}

func (c *converter) mapping(n *yaml.Node, path string, depth int, aliased bool) *value {
	v := &value{kind: objectValue, line: n.Line, fields: make([]field, 0, len(n.Content)/2)}
	seen := fieldLines{v: v}
	if len(n.Content)/2 > smallMapping {
		seen.index = make(map[string]int, len(n.Content)/2)
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			c.fail(k.Line, path, "a key must be a string, not a list or an object")
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		name := k.Value
		child := joinPath(path, name)
		if first, dup := seen.line(name); dup {
			c.fail(k.Line, child, "duplicate key "+strconv.Quote(name)+" (first at line "+strconv.Itoa(first)+")")
			continue
		}
		seen.add(field{name: name, line: k.Line, val: c.convert(val, child, depth+1, aliased)})
	}
	// YAML merge keys ("<<: *base") add the fields of the merged mappings
	// that the mapping does not set itself; earlier sources win.
	for _, m := range merges {
		for _, src := range c.mergeSources(m, path) {
			merged := c.convert(src, path, depth+1, true)
			for _, f := range merged.fields {
				if _, ok := seen.line(f.name); !ok {
					seen.add(f)
				}
			}
		}
	}
	return v
}

// smallMapping is the most fields a mapping looks up duplicates in by a
// scan; a map for each of the many small mappings of a manifest cost more
// (a fifth of the converter's allocations at 10,000 HTTPRoutes).
const smallMapping = 32

// fieldLines finds the fields of a mapping being built by name: the line
// of each, to report a duplicate key.
type fieldLines struct {
	v     *value
	index map[string]int // name -> line, only for mappings above smallMapping
}

func (s *fieldLines) line(name string) (int, bool) {
	if s.index != nil {
		l, ok := s.index[name]
		return l, ok
	}
	for _, f := range s.v.fields {
		if f.name == name {
			return f.line, true
		}
	}
	return 0, false
}

func (s *fieldLines) add(f field) {
	if s.index != nil {
		s.index[f.name] = f.line
	}
	s.v.fields = append(s.v.fields, f)
}

func (c *converter) mergeSources(n *yaml.Node, path string) []*yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{n}
	case yaml.SequenceNode:
		out := make([]*yaml.Node, 0, len(n.Content))
		for _, s := range n.Content {
			for s.Kind == yaml.AliasNode && s.Alias != nil {
				s = s.Alias
			}
			if s.Kind != yaml.MappingNode {
				c.fail(s.Line, path, "a merge key (<<) takes a mapping or a list of mappings")
				continue
			}
			out = append(out, s)
		}
		return out
	}
	c.fail(n.Line, path, "a merge key (<<) takes a mapping or a list of mappings")
	return nil
}

func (c *converter) scalar(n *yaml.Node, path string) *value {
	v := &value{line: n.Line}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return v
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			c.fail(n.Line, path, "invalid boolean "+strconv.Quote(n.Value))
			return v
		}
		v.kind, v.text = boolValue, strconv.FormatBool(b)
	case "!!int":
		v.kind = numberValue
		var i int64
		if err := n.Decode(&i); err == nil {
			v.text = strconv.FormatInt(i, 10)
			return v
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			v.text = strconv.FormatUint(u, 10)
			return v
		}
		c.fail(n.Line, path, "integer "+n.Value+" out of range")
		v.kind = nullValue
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			c.fail(n.Line, path, "invalid number "+strconv.Quote(n.Value))
			return v
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			c.fail(n.Line, path, n.Value+" is not a finite number (JSON has none)")
			return v
		}
		v.kind = numberValue
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			v.text = strconv.FormatInt(int64(f), 10)
		} else {
			v.text = strconv.FormatFloat(f, 'g', -1, 64)
		}
	case "!!str", "!!timestamp", "!!binary":
		// Timestamps stay text (metav1.Time parses RFC 3339 itself);
		// !!binary is base64 text, which is how []byte fields are written.
		v.kind, v.text = stringValue, n.Value
	default:
		c.fail(n.Line, path, "unsupported YAML tag "+tag)
	}
	return v
}

// joinPath appends a field name to a path: "spec.listeners", or with
// brackets for names that are not plain identifiers:
// metadata.annotations["example.com/x"].
func joinPath(path, name string) string {
	if plainName(name) {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
