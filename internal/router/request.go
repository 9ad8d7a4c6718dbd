package router

import "net/http"

// HeaderGetter reads the first value of a request header. Names passed to
// Lookup are in canonical MIME form ("X-Request-Id"). HTTPHeader adapts
// net/http's http.Header; a different HTTP engine can supply its own.
type HeaderGetter interface {
	// Lookup returns the first value of the header and whether it is present
	// (a present header may have an empty value).
	Lookup(name string) (string, bool)
}

// HTTPHeader lets an http.Header serve as a HeaderGetter without copying:
// router.HTTPHeader(r.Header).
type HTTPHeader http.Header

// Lookup implements HeaderGetter.
func (h HTTPHeader) Lookup(name string) (string, bool) {
	v := h[name]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Request is what the router needs to know about an inbound request. It holds
// only views of the request; Match never keeps or modifies it.
type Request struct {
	// Host is the Host header or :authority as received, with or without a
	// port, in any case, with or without a trailing dot.
	Host string
	// Path is the path as received: still escaped, without the query.
	Path string
	// Method is the request method.
	Method string
	// RawQuery is the query string without the leading '?'.
	RawQuery string
	// Header gives access to request headers; nil means no headers.
	Header HeaderGetter
	// ClientIP is the client's address without port; Maglev backends with
	// no hash header hash it.
	ClientIP string
}

// maxHostLen bounds the host names normalized on the stack; DNS names are at
// most 253 bytes, so a longer Host can only match a catch-all VirtualHost.
const maxHostLen = 256

// normalizeHost writes host in the form the lookup maps are keyed by into
// buf: port removed, ASCII lower case, one trailing dot removed. It returns
// false when the result does not fit in buf.
func normalizeHost(buf *[maxHostLen]byte, host string) ([]byte, bool) {
	host = stripPort(host)
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if len(host) > len(buf) {
		return nil, false
	}
	b := buf[:len(host)]
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b, true
}

// stripPort removes a ":port" suffix. A bracketed IPv6 literal keeps its
// brackets ("[::1]:80" -> "[::1]"); a bare IPv6 address without brackets has
// no port to strip.
func stripPort(host string) string {
	if len(host) > 0 && host[0] == '[' {
		for i := 1; i < len(host); i++ {
			if host[i] == ']' {
				return host[:i+1]
			}
		}
		return host
	}
	colon := -1
	for i := 0; i < len(host); i++ {
		if host[i] == ':' {
			if colon >= 0 {
				return host // several colons: an unbracketed IPv6 address
			}
			colon = i
		}
	}
	if colon >= 0 {
		return host[:colon]
	}
	return host
}

// NormalizeHostname returns host the way the router compares it: port
// removed, lower case, no trailing dot. It allocates; it is for callers off
// the hot path (redirects, logs, tests).
func NormalizeHostname(host string) string {
	var buf [maxHostLen]byte
	if b, ok := normalizeHost(&buf, host); ok {
		return string(b)
	}
	return lowerASCII(stripPort(host))
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	if n := len(b); n > 0 && b[n-1] == '.' {
		b = b[:n-1]
	}
	return string(b)
}
