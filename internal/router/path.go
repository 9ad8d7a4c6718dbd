package router

import (
	"errors"
	"fmt"
)

// EscapedSlashes is what path normalisation does with an escaped slash or
// backslash (%2F, %5C) or a raw backslash: characters some backends decode
// into a segment separator after the proxy has matched the route.
type EscapedSlashes string

const (
	// EscapedSlashesKeep forwards them unchanged (Envoy's default,
	// KEEP_UNCHANGED): they are not separators, so "/a%2F..%2Fb" is one
	// segment to the router.
	EscapedSlashesKeep EscapedSlashes = "keep"
	// EscapedSlashesReject answers 400 (Envoy's REJECT_REQUEST).
	EscapedSlashesReject EscapedSlashes = "reject"
)

// ParseEscapedSlashes accepts "keep", "reject" and "" (keep).
func ParseEscapedSlashes(s string) (EscapedSlashes, error) {
	switch EscapedSlashes(s) {
	case "", EscapedSlashesKeep:
		return EscapedSlashesKeep, nil
	case EscapedSlashesReject:
		return EscapedSlashesReject, nil
	}
	return "", fmt.Errorf("escaped slashes %q: want keep or reject", s)
}

// PathOptions configure NormalizePath. The zero value is the default:
// normalise, merge slashes, keep escaped slashes (docs/proxy.md).
type PathOptions struct {
	// Disable leaves paths as received (not recommended: a route
	// boundary can then be escaped with "/api/../secret").
	Disable bool
	// KeepSlashes leaves repeated slashes ("/a//b") as they are; by
	// default they are merged into one, as Envoy Gateway ships Envoy
	// (merge_slashes).
	KeepSlashes bool
	// EscapedSlashes is EscapedSlashesKeep ("" too) or EscapedSlashesReject.
	EscapedSlashes EscapedSlashes
}

// Errors of NormalizePath; the proxy answers both with 400.
var (
	ErrEscapedSlash = errors.New("path has an escaped slash or a backslash")
	// ErrHiddenDotSegment: "." or ".." next to an escaped slash or a
	// backslash ("/api/..%2Fsecret"). The router sees one segment, but a
	// backend that decodes %2F or takes "\" as a separator climbs out of
	// the route's prefix; nginx decodes and answers 404, RAUTA refuses.
	ErrHiddenDotSegment = errors.New("path has a dot segment behind an escaped slash or a backslash")
	ErrBadEscape        = errors.New("path has a malformed percent-encoding")
)

// NormalizePath returns path (escaped, without the query) in the form the
// router matches and the proxy forwards, following RFC 3986:
//
//   - percent-encodings are normalised (§6.2.2.1, §6.2.2.2): those of
//     unreserved characters are decoded ("%7E" -> "~", "%2e" -> "."), the
//     others get upper-case hex ("%2f" -> "%2F");
//   - dot segments are removed (§5.2.4): "/a/./b" -> "/a/b",
//     "/a/../b" -> "/b", "/.." -> "/", "/a/b/.." -> "/a/"; a path cannot
//     climb above the root;
//   - repeated slashes are merged unless opts.KeepSlashes;
//   - the result starts with "/".
//
// Escaped slashes are never decoded: they are kept, or rejected with
// ErrEscapedSlash; kept, a "." or ".." between them and a separator gives
// ErrHiddenDotSegment. A malformed escape gives ErrBadEscape. A path that is
// already normal is returned as is, without allocating.
func NormalizePath(path string, opts PathOptions) (string, error) {
	if opts.Disable {
		return path, nil
	}
	reject := opts.EscapedSlashes == EscapedSlashesReject
	merge := !opts.KeepSlashes
	clean, err := isNormal(path, merge, reject)
	if clean || err != nil {
		return path, err
	}
	b := make([]byte, 0, len(path)+1)
	b = append(b, '/')
	start := 0
	if path != "" && path[0] == '/' {
		start = 1
	}
	// seg collects the current segment, percent-normalised, in a buffer
	// reused for every segment.
	var seg []byte
	for i := start; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			last := i == len(path)
			b = appendSegment(b, seg, last, merge)
			seg = seg[:0]
			continue
		}
		c := path[i]
		if c != '%' {
			seg = append(seg, c)
			continue
		}
		// isNormal checked every escape, so this one is well formed.
		v := unhex(path[i+1])<<4 | unhex(path[i+2])
		i += 2
		if unreserved(v) {
			seg = append(seg, v)
			continue
		}
		seg = append(seg, '%', upperHex[v>>4], upperHex[v&15])
	}
	return string(b), nil
}

const upperHex = "0123456789ABCDEF"

// appendSegment adds one segment to b, which ends with '/', applying
// RFC 3986 §5.2.4: "." is dropped, ".." removes the last segment of b. A
// segment that is not the last is followed by '/'; a last segment that is
// empty, "." or ".." leaves b ending with '/'. With merge, empty segments
// (repeated slashes) are dropped.
func appendSegment(b, seg []byte, last, merge bool) []byte {
	switch {
	case len(seg) == 1 && seg[0] == '.':
		return b
	case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
		if len(b) == 1 {
			return b // at the root already
		}
		j := len(b) - 2
		for b[j] != '/' {
			j--
		}
		return b[:j+1]
	case len(seg) == 0 && (merge || last):
		return b
	}
	b = append(b, seg...)
	if !last {
		b = append(b, '/')
	}
	return b
}

// isNormal reports whether NormalizePath would return path unchanged, and
// the error it would return. It reads path once and does not allocate.
func isNormal(path string, merge, reject bool) (bool, error) {
	clean := path != "" && path[0] == '/'
	segStart := 0
	if clean {
		segStart = 1
	}
	// A segment is made of pieces split by escaped slashes and
	// backslashes: dots counts the dots of the current piece (-1 once it
	// holds anything else), split whether the segment has such a split,
	// dotPiece whether one of its pieces is "." or "..".
	dots, split, dotPiece := 0, false, false
	endPiece := func() {
		if dots == 1 || dots == 2 {
			dotPiece = true
		}
		dots = 0
	}
	for i := segStart; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			switch path[i] {
			case '%':
				if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
					return false, ErrBadEscape
				}
				v := unhex(path[i+1])<<4 | unhex(path[i+2])
				switch {
				case v == '/' || v == '\\':
					if reject {
						return false, ErrEscapedSlash
					}
					split = true
					endPiece()
				case v == '.' && dots >= 0:
					dots++
				default:
					dots = -1
				}
				if unreserved(v) || isLowerHex(path[i+1]) || isLowerHex(path[i+2]) {
					clean = false
				}
				i += 2
			case '\\':
				if reject {
					return false, ErrEscapedSlash
				}
				split = true
				endPiece()
			case '.':
				if dots >= 0 {
					dots++
				}
			default:
				dots = -1
			}
			continue
		}
		endPiece()
		if split && dotPiece {
			return false, ErrHiddenDotSegment
		}
		split, dotPiece = false, false
		// path[segStart:i] is a whole segment.
		switch seg := path[segStart:i]; {
		case seg == "." || seg == "..":
			clean = false
		case seg == "" && merge && i < len(path):
			clean = false
		}
		segStart = i + 1
	}
	return clean, nil
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

// unreserved is RFC 3986's unreserved set: ALPHA DIGIT - . _ ~
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
