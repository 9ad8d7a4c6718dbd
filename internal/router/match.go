package router

import (
	"fmt"
	"net/textproto"
	"regexp"
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// matcher is a compiled ir.Match. Each part is checked cheapest first.
//
// A Table holds one per route (25,100 at 10,000 HTTPRoutes), so it is kept
// small: the path kind is a byte and header and query matches share one
// list, which keeps a Route in the 208-byte size class instead of 256.
type matcher struct {
	path   pathMatcher
	method string
	// values are the header matches, then the query parameter matches.
	values []valueMatcher
}

// pathKind is an ir.PathMatchType as a byte.
type pathKind uint8

const (
	pathExact pathKind = iota
	pathPrefix
	pathRegex
)

type pathMatcher struct {
	kind pathKind
	// value is the exact path, or the prefix without its trailing slash
	// ("" for the prefix "/", which matches every path).
	value string
	re    *regexp.Regexp
}

type valueMatcher struct {
	name  string
	exact string
	re    *regexp.Regexp
	// query is set for a query parameter match, unset for a header.
	query bool
}

func compileMatch(m ir.Match) (matcher, error) {
	var out matcher
	pm, err := compilePath(m.Path)
	if err != nil {
		return out, err
	}
	out.path = pm
	out.method = m.Method
	for i, h := range m.Headers {
		if h.Name == "" {
			return out, fmt.Errorf("match.headers[%d]: empty name", i)
		}
		vm, err := compileValue(h)
		if err != nil {
			return out, fmt.Errorf("match.headers[%d] %q: %w", i, h.Name, err)
		}
		vm.name = textproto.CanonicalMIMEHeaderKey(h.Name)
		out.values = append(out.values, vm)
	}
	for i, q := range m.QueryParams {
		if q.Name == "" {
			return out, fmt.Errorf("match.queryParams[%d]: empty name", i)
		}
		vm, err := compileValue(q)
		if err != nil {
			return out, fmt.Errorf("match.queryParams[%d] %q: %w", i, q.Name, err)
		}
		vm.query = true
		out.values = append(out.values, vm)
	}
	return out, nil
}

func compilePath(p ir.PathMatch) (pathMatcher, error) {
	switch p.Type {
	case ir.PathExact:
		return pathMatcher{kind: pathExact, value: matchValue(p.Value)}, nil
	case ir.PathPrefix, "":
		// An unset path match is the spec's default: PathPrefix "/".
		v := matchValue(p.Value)
		if v == "" {
			v = "/"
		}
		return pathMatcher{kind: pathPrefix, value: strings.TrimRight(v, "/")}, nil
	case ir.PathRegex:
		re, err := compileAnchored(p.Value)
		if err != nil {
			return pathMatcher{}, fmt.Errorf("match.path: %w", err)
		}
		return pathMatcher{kind: pathRegex, value: p.Value, re: re}, nil
	}
	return pathMatcher{}, fmt.Errorf("match.path: unknown type %q", p.Type)
}

// matchValue puts an Exact or Prefix path in the form NormalizePath gives
// requests ("/%7euser" -> "/~user"), so a route written with escapes still
// matches. Slashes are left alone: merging is the listener's choice.
func matchValue(v string) string {
	if v == "" {
		return v
	}
	if n, err := NormalizePath(v, PathOptions{KeepSlashes: true}); err == nil {
		return n
	}
	return v
}

func compileValue(v ir.ValueMatch) (valueMatcher, error) {
	switch v.Type {
	case ir.StringExact, "":
		return valueMatcher{name: v.Name, exact: v.Value}, nil
	case ir.StringRegex:
		re, err := compileAnchored(v.Value)
		if err != nil {
			return valueMatcher{}, err
		}
		return valueMatcher{name: v.Name, re: re}, nil
	}
	return valueMatcher{}, fmt.Errorf("unknown type %q", v.Type)
}

// compileAnchored compiles an RE2 expression that must match the whole input,
// as the Gateway API requires of RegularExpression matches.
func compileAnchored(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", expr, err)
	}
	return re, nil
}

func (m *matcher) match(r *Request) bool {
	if !m.path.match(r.Path) {
		return false
	}
	if m.method != "" && m.method != r.Method {
		return false
	}
	for i := range m.values {
		v := &m.values[i]
		if v.query {
			if !v.matchQuery(r.RawQuery) {
				return false
			}
			continue
		}
		if r.Header == nil {
			return false
		}
		hv, ok := r.Header.Lookup(v.name)
		if !ok || !v.matchString(hv) {
			return false
		}
	}
	return true
}

func (p *pathMatcher) match(path string) bool {
	switch p.kind {
	case pathExact:
		return path == p.value
	case pathPrefix:
		return prefixMatch(p.value, path)
	default:
		return p.re.MatchString(path)
	}
}

// prefixMatch reports whether path lies under prefix with segment semantics:
// prefix (without trailing slash) "/foo" matches "/foo", "/foo/" and
// "/foo/bar" but not "/foobar". The empty prefix (from "/") matches all.
func prefixMatch(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

func (v *valueMatcher) matchString(s string) bool {
	if v.re != nil {
		return v.re.MatchString(s)
	}
	return s == v.exact
}

// matchQuery checks the first value of the parameter v.name in raw. Exact
// matches compare escaped input against the plain value without decoding;
// only a regex match on an escaped value decodes (and allocates).
func (v *valueMatcher) matchQuery(raw string) bool {
	val, ok := queryFirst(raw, v.name)
	if !ok {
		return false
	}
	if v.re == nil {
		return unescapedEqual(val, v.exact)
	}
	if strings.ContainsAny(val, "%+") {
		dec, ok := unescapeQuery(val)
		if !ok {
			return false
		}
		return v.re.MatchString(dec)
	}
	return v.re.MatchString(val)
}

// queryFirst returns the still-escaped first value of the parameter whose
// decoded name is name. Pairs that net/url would reject (a ';' or a bad
// escape in the name) are skipped, as url.ParseQuery skips them.
func queryFirst(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		if unescapedEqual(k, name) {
			return val, true
		}
	}
	return "", false
}

// unescapedEqual reports whether the query-escaped esc decodes to plain,
// without allocating. An invalid escape never equals anything.
func unescapedEqual(esc, plain string) bool {
	j := 0
	for i := 0; i < len(esc); i++ {
		c := esc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(esc) || !isHex(esc[i+1]) || !isHex(esc[i+2]) {
				return false
			}
			c = unhex(esc[i+1])<<4 | unhex(esc[i+2])
			i += 2
		}
		if j >= len(plain) || plain[j] != c {
			return false
		}
		j++
	}
	return j == len(plain)
}

// unescapeQuery decodes a query component ('+' is a space).
func unescapeQuery(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", false
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		b = append(b, c)
	}
	return string(b), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
