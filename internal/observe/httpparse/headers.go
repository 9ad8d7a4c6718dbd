package httpparse

import "bytes"

// maxHeaders bounds the work per message on garbage input.
const maxHeaders = 64

// parseHeaders calls fn for each complete header line in b and reports
// whether the terminating blank line was seen. A last line without its
// newline was cut by the capture and is ignored.
func parseHeaders(b []byte, fn func(name, value []byte)) (bool, error) {
	for n := 0; n < maxHeaders; n++ {
		eol := bytes.IndexByte(b, '\n')
		if eol < 0 {
			return false, nil
		}
		line := trimCR(b[:eol])
		b = b[eol+1:]
		if len(line) == 0 {
			return true, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return false, malformed("header line")
		}
		fn(line[:colon], bytes.Trim(line[colon+1:], " \t"))
	}
	return false, nil
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
