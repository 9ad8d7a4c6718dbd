package router

import (
	"fmt"
	"strings"
)

// hostIndex finds the value registered for the most specific hostname that
// matches a request host: an exact name, else the longest wildcard suffix,
// else the catch-all. Keys are normalized (lower case, no trailing dot).
type hostIndex[T any] struct {
	exact map[string]T
	// wild is keyed by the wildcard's suffix with its leading dot:
	// "*.example.com" is stored as ".example.com".
	wild   map[string]T
	any    T
	hasAny bool
}

func newHostIndex[T any]() hostIndex[T] {
	return hostIndex[T]{exact: map[string]T{}, wild: map[string]T{}}
}

// hostKey validates a configured hostname and returns its index key and
// whether it is a wildcard. "" is the catch-all.
func hostKey(name string) (key string, wildcard bool, err error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	switch {
	case name == "":
		return "", false, nil
	case strings.HasPrefix(name, "*."):
		suffix := name[1:]
		if len(suffix) < 2 || strings.Contains(suffix[1:], "*") {
			return "", false, fmt.Errorf("hostname %q: invalid wildcard", name)
		}
		return suffix, true, nil
	case strings.Contains(name, "*"):
		return "", false, fmt.Errorf("hostname %q: wildcard must be a leading \"*.\" label", name)
	}
	return name, false, nil
}

// lookup returns the value for host, which must already be normalized.
func (x *hostIndex[T]) lookup(host []byte) (T, bool) {
	if v, ok := x.exact[string(host)]; ok {
		return v, true
	}
	if len(x.wild) > 0 {
		// The first dot after at least one character starts the longest
		// suffix, so scanning left to right finds the most specific wildcard.
		// Starting at 1 keeps "*.example.com" from matching ".example.com".
		for i := 1; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if v, ok := x.wild[string(host[i:])]; ok {
				return v, true
			}
		}
	}
	return x.any, x.hasAny
}
