package h2

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// newRequest checks a request's header block (RFC 9113 8.3) and builds the
// handler's request and the stream. A malformed request gets a stream error
// code instead. Callers hold c.mu.
func (c *conn) newRequest(f *headerBlock) (*http.Request, *stream, http2.ErrCode) {
	st := c.newStream()
	if code := c.fillRequest(f, st); code != http2.ErrCodeNo {
		c.recycle(st)
		return nil, nil, code
	}
	return &st.req, st, http2.ErrCodeNo
}

// fillRequest builds st's request from the header block f.
func (c *conn) fillRequest(f *headerBlock, st *stream) http2.ErrCode {
	var method, scheme, authority, path, protocol string
	seen := 0
	for _, hf := range f.pseudo() {
		var bit int
		var dst *string
		switch hf.Name {
		case ":method":
			bit, dst = 1, &method
		case ":scheme":
			bit, dst = 2, &scheme
		case ":authority":
			bit, dst = 4, &authority
		case ":path":
			bit, dst = 8, &path
		case ":protocol":
			bit, dst = 16, &protocol
		default: // :status, or unknown
			return http2.ErrCodeProtocol
		}
		if seen&bit != 0 {
			return http2.ErrCodeProtocol
		}
		seen |= bit
		*dst = hf.Value
	}
	isConnect := method == http.MethodConnect
	switch {
	case protocol != "": // extended CONNECT is not offered
		return http2.ErrCodeProtocol
	case isConnect && (scheme != "" || path != "" || authority == ""):
		return http2.ErrCodeProtocol
	case !isConnect && (method == "" || scheme == "" || !originForm(method, path)):
		return http2.ErrCodeProtocol
	}

	regular := f.regular()
	// A recycled stream brings the map and the values' array of an
	// earlier request, emptied (recycle).
	header := st.header
	if header == nil {
		header = make(http.Header, len(regular))
	}
	// One backing array for the values, as net/textproto does: a field
	// seen once (nearly all) costs no allocation of its own.
	values := st.values
	if cap(values) < len(regular) {
		values = make([]string, 0, len(regular))
	}
	st.header, st.values = header, values
	var cookies []string
	declared := int64(-1)
	for _, hf := range regular {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return http2.ErrCodeProtocol // connection-specific (RFC 9113 8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return http2.ErrCodeProtocol
			}
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		case "content-length":
			n, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil || (declared >= 0 && int64(n) != declared) {
				return http2.ErrCodeProtocol
			}
			declared = int64(n)
		}
		k := c.canon.Of(hf.Name)
		if vv, ok := header[k]; ok {
			header[k] = append(vv, hf.Value)
			continue
		}
		values = append(values, hf.Value)
		header[k] = values[len(values)-1 : len(values) : len(values)]
	}
	st.values = values
	if len(cookies) > 0 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if authority == "" {
		authority = header.Get("Host")
	}

	requestURI := path
	if isConnect {
		st.url = url.URL{Host: authority}
		requestURI = authority
	} else if !c.parsedURL(path, &st.url) {
		return http2.ErrCodeProtocol
	}

	ended := f.endStream
	if ended && declared > 0 {
		return http2.ErrCodeProtocol
	}
	st.id = f.id
	// The context is the request's own allocation, never recycled: code
	// may keep it past the handler (a mirrored request's values) and must
	// find it ended for good.
	st.reqCtx = &streamContext{parent: c.baseCtx, id: f.id}
	st.sendWindow = c.peerInitial
	st.recvWindow = streamRecvWindow
	st.declared = declared
	st.remoteDone = ended
	st.expectContinue = !ended && strings.EqualFold(header.Get("Expect"), "100-continue")
	st.cond.L = &c.mu
	r := &st.req
	*r = http.Request{
		Method:     method,
		URL:        &st.url,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       authority,
		RemoteAddr: c.remoteAddr,
		RequestURI: requestURI,
		TLS:        c.tlsState,
	}
	switch {
	case ended:
		r.Body = http.NoBody
	default:
		r.ContentLength = declared
		r.Body = &requestBody{st: st, gen: st.gen, req: r} // the trailers go to the request the handler holds
	}
	if vv := header["Trailer"]; len(vv) > 0 {
		r.Trailer = http.Header{}
		for _, v := range vv {
			for _, k := range strings.Split(v, ",") {
				k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
				if k != "" && httpguts.ValidTrailerHeader(k) {
					r.Trailer[k] = nil
				}
			}
		}
	}
	// WithContext is inlined and its copy does not escape: the request
	// stays in the stream's allocation.
	*r = *r.WithContext(st.reqCtx)
	// The worker that runs the stream gives it its Header() map.
	st.rw = responseWriter{st: st, isHead: method == http.MethodHead}
	return http2.ErrCodeNo
}

// parsedURL parses path, a request's :path, into u. The last path parsed
// is kept: a client asks for the same path again and again, and a copy of
// the parsed URL costs no allocation. Callers hold c.mu.
func (c *conn) parsedURL(path string, u *url.URL) bool {
	if path == c.lastPath && path != "" {
		*u = c.lastURL
		return true
	}
	p, err := url.ParseRequestURI(path)
	if err != nil {
		return false
	}
	*u = *p
	c.lastPath, c.lastURL = path, *p
	return true
}

// originForm reports whether path is a valid :path (RFC 9113 8.3.1): the
// origin form, starting with "/", or "*" for OPTIONS. The absolute form
// (http://host/path) is malformed in HTTP/2: the authority belongs in
// :authority, and routing must not see a second one.
func originForm(method, path string) bool {
	if path == "*" {
		return method == http.MethodOptions
	}
	return strings.HasPrefix(path, "/")
}
