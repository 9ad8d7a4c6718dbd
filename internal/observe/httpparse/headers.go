package httpparse

import "bytes"

// maxHeaders bounds the work per message on garbage input.
const maxHeaders = 64

// parseHeaders calls fn for each complete header line in b. When the
// terminating blank line was seen it returns the bytes consumed up to and
// including it, else 0. A last line without its newline was cut by the
// capture and is ignored.
func parseHeaders(b []byte, fn func(name, value []byte)) (int, error) {
	used := 0
	for n := 0; n < maxHeaders; n++ {
		eol := bytes.IndexByte(b[used:], '\n')
		if eol < 0 {
			return 0, nil
		}
		line := trimCR(b[used : used+eol])
		used += eol + 1
		if len(line) == 0 {
			return used, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return 0, malformed("header line")
		}
		fn(line[:colon], trimOWS(line[colon+1:]))
	}
	return 0, nil
}

// isChunked: a Transfer-Encoding value whose last coding is chunked.
func isChunked(v []byte) bool {
	v = bytes.TrimSpace(v)
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = bytes.TrimSpace(v[i+1:])
	}
	return equalFold(v, "chunked")
}

// mergeContentLength applies RFC 9112 6.3: repeated values must agree; an
// invalid or conflicting value makes the length unknown (-2 sticks).
func mergeContentLength(prev int64, v []byte) int64 {
	if prev == -2 {
		return -2
	}
	n, ok := parseUint(v)
	if !ok || (prev >= 0 && prev != n) {
		return -2
	}
	return n
}

func parseUint(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// trimOWS strips optional whitespace (SP, HTAB) around a field value.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
