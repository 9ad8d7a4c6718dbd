package h2client

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"

	"golang.org/x/net/http/httpguts"

	"github.com/false-systems/rauta/internal/h1"
)

// A request head is encoded with literal fields "without indexing" (RFC
// 7541 6.2.2), names taken from the static table where it has them and
// strings without Huffman coding: no dynamic table to keep in step, and
// nothing to compute per field beyond copying it. Each request carries a
// new X-Request-Id, so indexing would mostly evict; nginx's and HAProxy's
// encoders for backend requests index nothing either.

// staticNames maps a field name, canonical (as http.Header keys are) and
// lower-case, to its index in the HPACK static table (RFC 7541 Appendix A).
// It is read-only after the package initialises.
var staticNames = func() map[string]uint8 {
	names := []string{
		"accept-charset", "accept-encoding", "accept-language", "accept-ranges", "accept",
		"access-control-allow-origin", "age", "allow", "authorization", "cache-control",
		"content-disposition", "content-encoding", "content-language", "content-length",
		"content-location", "content-range", "content-type", "cookie", "date", "etag", "expect",
		"expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range",
		"if-unmodified-since", "last-modified", "link", "location", "max-forwards",
		"proxy-authenticate", "proxy-authorization", "range", "referer", "refresh", "retry-after",
		"server", "set-cookie", "strict-transport-security", "transfer-encoding", "user-agent",
		"vary", "via", "www-authenticate",
	}
	m := make(map[string]uint8, 2*len(names))
	for i, n := range names {
		m[n] = uint8(15 + i)
		m[textproto.CanonicalMIMEHeaderKey(n)] = uint8(15 + i)
	}
	return m
}()

// Static table indexes of the pseudo-header fields.
const (
	idxAuthority     = 1
	idxMethodGet     = 2
	idxMethodPost    = 3
	idxMethod        = 2 // name only
	idxPathSlash     = 4
	idxPath          = 4 // name only
	idxSchemeHTTP    = 6
	idxContentLength = 28
)

// errHeadTooLarge: the request head is larger than the backend's
// SETTINGS_MAX_HEADER_LIST_SIZE.
var errHeadTooLarge = errors.New("h2client: request head exceeds the backend's header list size")

// skipRequestField reports the request fields that never go out over
// HTTP/2: the connection-specific ones (RFC 9113 8.2.2), Host (sent as
// :authority), Content-Length (written from the request's length) and
// Trailer (trailers go out as they come; announcing them is optional, RFC
// 9110 6.6.2).
func skipRequestField(lower []byte) bool {
	switch string(lower) {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length", "http2-settings", "trailer":
		return true
	}
	return false
}

// head is what a request's HEADERS are made from: req, and its fields
// from req.Header or, when listed, from fields.
type head struct {
	req    *http.Request
	fields h1.Fields
	listed bool
}

// appendHead encodes h's request head (RFC 9113 8.3.1) to dst. size is
// its header list size (RFC 9113 6.5.2), checked by the caller against
// the backend's limit.
func appendHead(dst []byte, h *head, hasBody bool) (out []byte, size int, err error) {
	req := h.req
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return dst, 0, fmt.Errorf("h2client: invalid Host %q", req.Host)
	}
	switch method {
	case http.MethodGet:
		dst = append(dst, 0x80|idxMethodGet)
	case http.MethodPost:
		dst = append(dst, 0x80|idxMethodPost)
	case http.MethodConnect:
		return dst, 0, errors.New("h2client: CONNECT is not supported")
	default:
		if !validMethod(method) {
			return dst, 0, fmt.Errorf("h2client: invalid method %q", method)
		}
		dst = appendLiteral(dst, idxMethod, "", method)
	}
	dst = append(dst, 0x80|idxSchemeHTTP)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	dst = appendLiteral(dst, idxAuthority, "", host)
	path, query := req.URL.EscapedPath(), req.URL.RawQuery
	if req.URL.Opaque != "" {
		path = req.URL.Opaque
	}
	if path == "" {
		path = "/"
	}
	plen := len(path)
	if query != "" || req.URL.ForceQuery {
		plen += 1 + len(query)
	}
	if plen == 1 {
		dst = append(dst, 0x80|idxPathSlash)
	} else {
		dst = appendInt(dst, 4, 0, idxPath)
		dst = appendInt(dst, 7, 0, uint64(plen))
		dst = append(dst, path...)
		if plen > len(path) {
			dst = append(dst, '?')
			dst = append(dst, query...)
		}
	}
	size = len(method) + len(host) + plen + len("http") + 4*(32+7)
	if h.listed {
		for _, f := range h.fields {
			if dst, err = appendRequestField(dst, f.Name, f.Value, &size); err != nil {
				return dst, 0, err
			}
		}
	} else {
		for k, vv := range req.Header {
			for _, v := range vv {
				if dst, err = appendRequestField(dst, k, v, &size); err != nil {
					return dst, 0, err
				}
			}
		}
	}
	if n := req.ContentLength; n > 0 && hasBody || n == 0 && !hasBody && bodyMethod(method) {
		var b [20]byte
		v := strconv.AppendInt(b[:0], max(n, 0), 10)
		dst = appendInt(dst, 4, 0, idxContentLength)
		dst = appendInt(dst, 7, 0, uint64(len(v)))
		dst = append(dst, v...)
		size += len("content-length") + len(v) + 32
	}
	return dst, size, nil
}

// appendRequestField encodes one request field (name in any case) unless
// HTTP/2 leaves it out, adding its size to *size.
func appendRequestField(dst []byte, name, value string, size *int) ([]byte, error) {
	if !httpguts.ValidHeaderFieldName(name) {
		return dst, fmt.Errorf("h2client: invalid header field name %q", name)
	}
	var buf [64]byte
	lower := lowerName(buf[:0], name)
	if skipRequestField(lower) {
		return dst, nil
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return dst, fmt.Errorf("h2client: invalid value of header field %q", name)
	}
	switch string(lower) {
	case "te":
		if value != "trailers" {
			return dst, nil // the only TE value HTTP/2 allows
		}
	case "user-agent":
		if value == "" {
			return dst, nil // an empty User-Agent means none
		}
	}
	*size += len(name) + len(value) + 32
	return appendField(dst, name, lower, value), nil
}

// appendTrailers encodes a request's trailers.
func appendTrailers(dst []byte, tr http.Header) ([]byte, error) {
	var size int
	var err error
	for k, vv := range tr {
		for _, v := range vv {
			if dst, err = appendRequestField(dst, k, v, &size); err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// bodyMethod: methods whose empty body is announced with Content-Length: 0,
// as net/http does.
func bodyMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return m != ""
}

// lowerName is k in lower case, in buf when it fits.
func lowerName(buf []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf
}

// appendField encodes one field, its name from the static table when it
// is there (looked up by the key as given, canonical, or lower-cased).
func appendField(dst []byte, key string, lower []byte, value string) []byte {
	idx, ok := staticNames[key]
	if !ok {
		idx = staticNames[string(lower)]
	}
	return appendLiteral(dst, idx, string(lower), value)
}

// appendLiteral encodes a literal field without indexing, its name by
// static index idx, or name when idx is 0.
func appendLiteral(dst []byte, idx uint8, name, value string) []byte {
	if idx != 0 {
		dst = appendInt(dst, 4, 0, uint64(idx))
	} else {
		dst = append(dst, 0)
		dst = appendInt(dst, 7, 0, uint64(len(name)))
		dst = append(dst, name...)
	}
	dst = appendInt(dst, 7, 0, uint64(len(value)))
	return append(dst, value...)
}

// appendInt encodes v as an HPACK integer with an n-bit prefix (RFC 7541
// 5.1), the first byte's other bits set to first.
func appendInt(dst []byte, n uint, first byte, v uint64) []byte {
	limit := uint64(1)<<n - 1
	if v < limit {
		return append(dst, first|byte(v))
	}
	dst = append(dst, first|byte(limit))
	v -= limit
	for v >= 128 {
		dst = append(dst, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(dst, byte(v))
}
