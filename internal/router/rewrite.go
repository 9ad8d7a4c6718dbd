package router

import (
	"fmt"
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// pathModifier is a compiled ir.PathModifier.
type pathModifier struct {
	full bool
	// value is the replacement; for prefix replacement it has no trailing
	// slash, so "/" and "" both strip the prefix.
	value string
	// prefix is the matched prefix (without trailing slash) that
	// ReplacePrefixMatch replaces.
	prefix string
}

func compilePathModifier(m *ir.PathModifier, match ir.PathMatch) (*pathModifier, error) {
	if m == nil {
		return nil, nil
	}
	switch m.Type {
	case ir.ReplaceFullPath:
		return &pathModifier{full: true, value: m.Value}, nil
	case ir.ReplacePrefixMatch:
		if match.Type != ir.PathPrefix {
			return nil, fmt.Errorf("path: ReplacePrefixMatch needs a PathPrefix match, route has %q", match.Type)
		}
		return &pathModifier{
			value:  strings.TrimRight(m.Value, "/"),
			prefix: strings.TrimRight(match.Value, "/"),
		}, nil
	}
	return nil, fmt.Errorf("path: unknown type %q", m.Type)
}

// apply returns the rewritten path. Paths stay in escaped form.
func (m *pathModifier) apply(path string) string {
	if m.full {
		return m.value
	}
	return ReplacePrefix(path, m.prefix, m.value)
}

// ReplacePrefix replaces the matched prefix of path with repl using the
// Gateway API's segment rules: with prefix "/foo", replacement "/bar" turns
// "/foo/baz" into "/bar/baz", replacement "/" (or "") turns "/foo/baz" into
// "/baz" and "/foo" into "/". Trailing slashes of prefix and repl do not
// matter. A path that is not under prefix is returned unchanged.
func ReplacePrefix(path, prefix, repl string) string {
	prefix = strings.TrimRight(prefix, "/")
	repl = strings.TrimRight(repl, "/")
	if !prefixMatch(prefix, path) {
		return path
	}
	out := repl + path[len(prefix):]
	if out == "" || out[0] != '/' {
		out = "/" + out
	}
	return out
}

// Rewrite is a compiled ir.Rewrite.
type Rewrite struct {
	// Hostname replaces the Host header when not empty.
	Hostname string
	path     *pathModifier
}

func compileRewrite(w *ir.Rewrite, ctx filterContext) (*Rewrite, error) {
	pm, err := compilePathModifier(w.Path, ctx.path)
	if err != nil {
		return nil, err
	}
	return &Rewrite{Hostname: w.Hostname, path: pm}, nil
}

// Path returns the rewritten escaped path and whether it changed.
func (w *Rewrite) Path(path string) (string, bool) {
	if w.path == nil {
		return path, false
	}
	return w.path.apply(path), true
}
