// Package route turns raw request targets into low-cardinality path
// templates for labels and events ("/users/123/orders" -> "/users/:num/orders"),
// and caps how many distinct templates each service may produce.
package route

import "strings"

// MaxSegments is how many path segments a template keeps; deeper paths end
// in "/*".
const MaxSegments = 4

// Other replaces templates beyond a service's limit (the OpenTelemetry
// convention for overflowed values).
const Other = "_OTHER"

// Template normalizes a request-target: query and fragment dropped, the
// path of absolute-form targets kept, identifier-like segments replaced
// (:num, :uuid, :id), at most MaxSegments segments.
func Template(target string) string {
	if target == "*" {
		return "*"
	}
	if i := strings.Index(target, "://"); i >= 0 {
		rest := target[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "/"
		}
		target = rest[j:]
	}
	if len(target) == 0 || target[0] != '/' {
		// authority-form (CONNECT host:port) or garbage: never a label.
		return Other
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	var b strings.Builder
	b.Grow(len(target))
	n := 0
	for seg := range strings.SplitSeq(target[1:], "/") {
		if n == MaxSegments {
			b.WriteString("/*")
			return b.String()
		}
		n++
		b.WriteByte('/')
		b.WriteString(normalizeSegment(seg))
	}
	return b.String()
}

func normalizeSegment(s string) string {
	switch {
	case s == "":
		return ""
	case isNumber(s):
		return ":num"
	case isUUID(s):
		return ":uuid"
	case looksLikeID(s):
		return ":id"
	}
	return s
}

func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// looksLikeID: long segments, or segments of 8+ characters mixing digits
// and letters (hashes, tokens, generated names). Plain words stay.
func looksLikeID(s string) bool {
	if len(s) > 32 {
		return true
	}
	if len(s) < 8 {
		return false
	}
	digits, other := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '%':
			return true // percent-encoded data
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		default:
			other++
		}
	}
	return digits >= 2
}
