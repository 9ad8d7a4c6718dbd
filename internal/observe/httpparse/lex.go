package httpparse

import "bytes"

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isToken: RFC 9110 tchar.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isTarget: visible ASCII, no spaces or controls (obs-text rejected too).
func isTarget(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// parseVersion accepts exactly "HTTP/1.0" and "HTTP/1.1".
func parseVersion(b []byte) (int, bool) {
	if len(b) != 8 || string(b[:7]) != "HTTP/1." {
		return 0, false
	}
	switch b[7] {
	case '0':
		return 0, true
	case '1':
		return 1, true
	}
	return 0, false
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// equalFold compares an ASCII header name with a lower-case literal.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// internMethod returns a constant string for the standard methods so that
// parsing them allocates nothing.
func internMethod(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return string(m)
}

// isVersionPrefix: b is "HTTP/1.0" or "HTTP/1.1", or a prefix of one (a
// capture cut inside the version).
func isVersionPrefix(b []byte) bool {
	const v = "HTTP/1."
	if len(b) <= len(v) {
		return string(b) == v[:len(b)]
	}
	return len(b) == 8 && string(b[:7]) == v && (b[7] == '0' || b[7] == '1')
}

// isTargetForm checks the request-target's form (RFC 9112 3.2):
// origin-form "/path", absolute-form "scheme://...", authority-form
// "host:port" only for CONNECT, asterisk-form "*" only for OPTIONS.
// complete is false for a target cut by the capture: only a prefix is
// known, and it must already show its form.
func isTargetForm(method, t []byte, complete bool) bool {
	switch {
	case t[0] == '/':
		return true
	case string(method) == "CONNECT":
		return isAuthorityForm(t, complete)
	case len(t) == 1 && t[0] == '*':
		return string(method) == "OPTIONS"
	}
	return isAbsoluteForm(t)
}

// isAbsoluteForm: scheme "://" (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
func isAbsoluteForm(t []byte) bool {
	i := bytes.Index(t, []byte("://"))
	if i <= 0 || !isAlpha(t[0]) {
		return false
	}
	for _, c := range t[1:i] {
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isAuthorityForm: host ":" port. A cut target is accepted while it has
// no character an authority cannot hold.
func isAuthorityForm(t []byte, complete bool) bool {
	if bytes.ContainsAny(t, "/?#@") {
		return false
	}
	if !complete {
		return true
	}
	i := bytes.LastIndexByte(t, ':')
	if i <= 0 || i == len(t)-1 {
		return false
	}
	for _, c := range t[i+1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
