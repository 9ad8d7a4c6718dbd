package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/upstream"
)

// outbound is the request a backend gets. It is built once per request
// from the client's (fromHTTP for net/http's *http.Request,
// h1conn.buildOutbound for the HTTP/1.1 engine's parsed head) and edited
// once by the route's filters (Server.runFilters); every forwarding path
// sends that one result. The HTTP/1.1 engine and the pooled path write its
// head with upstream.Request.AppendHead; the Transport (TLS and h2c
// backends, bodies of unknown length), upgrades and mirrors get it as an
// *http.Request (httpRequest). Either way upstream.FramingField decides
// which fields never reach the backend, so no filter can change the
// request's framing on any path.
type outbound struct {
	upstream.Request
	// The net/http path's own, nil on the engine's: the client's request
	// (the base of httpRequest), the context forwarding runs in (the
	// client's: it ends when the client goes away), the body sent (the
	// client's, or a buffered copy once a mirror or retry read it; nil for
	// none) and its Transfer-Encoding, and the protocol an upgrade asks
	// for.
	in      *http.Request
	ctx     context.Context
	body    io.ReadCloser
	te      []string
	upgrade string
	// deadline is when the request must be answered by (callDeadline);
	// zero for no deadline. ctx carries none: each forwarder bounds its
	// waits by this.
	deadline time.Time
}

func newOutboundState() any { return new(outbound) }

// takeOutbound gives a net/http request its outbound request, with the
// field list a previous one grew.
func (f *forwarder) takeOutbound() *outbound { return f.outbounds.Get().(*outbound) }

// putOutbound gives o back. Nothing keeps o once forwarding returned: the
// head written from it is a copy, an *http.Request made from it has its
// own header map.
func (f *forwarder) putOutbound(o *outbound) {
	clear(o.Fields)
	fields := o.Fields[:0]
	if cap(fields) > maxKeptFields {
		fields = nil
	}
	*o = outbound{Request: upstream.Request{Fields: fields}}
	f.outbounds.Put(o)
}

// maxKeptFields is the largest field list kept for the next request; a
// request with more fields (up to Options.MaxHeaderFields) grows its own.
const maxKeptFields = 64

// fromHTTP builds o from r: its header less the hop-by-hop fields (RFC
// 9110 7.6.1: the fixed list, every Proxy-* field and the ones Connection
// names), with X-Forwarded-* set and X-Request-Id replaced by requestID
// unless that is "" (the client's is kept), Te: trailers kept for gRPC,
// and Connection and Upgrade re-added for an upgrade. path is the escaped
// path routed; when it differs from received (normalised), it is the one
// forwarded. Filters run after, so they can neither resurrect nor be
// defeated by the dropped fields.
func (o *outbound) fromHTTP(ctx context.Context, r *http.Request, scheme, ip, upgrade, requestID, path, received string) {
	conn := r.Header["Connection"]
	fields := o.Fields[:0]
	for k, vv := range r.Header {
		switch {
		case isHopHeader(k), connectionNamed(conn, k):
			continue
		case k == "X-Forwarded-For", k == "X-Forwarded-Proto", k == "X-Forwarded-Host":
			continue
		case requestID != "" && k == "X-Request-Id":
			continue
		}
		for _, v := range vv {
			if k == "User-Agent" && v == "" {
				continue // an empty User-Agent means none
			}
			fields = append(fields, h1.Field{Name: k, Value: v})
		}
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		fields = append(fields, h1.Field{Name: "Te", Value: "trailers"}) // gRPC needs it end to end
	}
	if upgrade != "" {
		fields = append(fields, h1.Field{Name: "Connection", Value: "Upgrade"}, h1.Field{Name: "Upgrade", Value: upgrade})
	}
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	fields = append(fields,
		h1.Field{Name: "X-Forwarded-For", Value: ip},
		h1.Field{Name: "X-Forwarded-Proto", Value: scheme},
		h1.Field{Name: "X-Forwarded-Host", Value: r.Host})
	if requestID != "" {
		fields = append(fields, h1.Field{Name: "X-Request-Id", Value: requestID})
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	*o = outbound{
		Request: upstream.Request{
			Method: r.Method, Path: requestTarget(r.URL, path, received), Query: r.URL.RawQuery,
			ForceQuery: r.URL.ForceQuery, Host: host, Fields: fields, ContentLength: r.ContentLength,
		},
		in: r, ctx: ctx, body: r.Body, te: r.TransferEncoding, upgrade: upgrade,
	}
	if r.ContentLength == 0 {
		o.body = nil // a nil body lets the transport reuse connections freely
	}
}

// requestTarget is the escaped path sent: the client's as net/http's
// Transport would write it, or the routed path when that differs.
func requestTarget(u *url.URL, path, received string) string {
	if path != received {
		var p url.URL
		setEscapedPath(&p, path)
		return p.EscapedPath()
	}
	if u.Opaque == "" {
		if p := u.EscapedPath(); p != "" {
			return p
		}
	}
	c := *u
	c.RawQuery, c.ForceQuery = "", false
	return c.RequestURI()
}

// connectionNamed reports whether a Connection value in conn lists the
// canonical key k.
func connectionNamed(conn []string, k string) bool {
	for _, v := range conn {
		if h1.HasToken(v, k) {
			return true
		}
	}
	return false
}

// httpRequest is o as an *http.Request for net/http's Transport to send to
// addr: a shallow copy of the client's request with o's target, Host,
// body and a header map made from o's fields less the framing ones.
//
// It costs one request copy, one URL, one header map and one backing array
// holding every value, instead of r.Clone and edits.
func (o *outbound) httpRequest(ctx context.Context, scheme, addr string) *http.Request {
	out := o.bareRequest(ctx, scheme, addr)
	out.Header = o.header()
	return out
}

// bareRequest is httpRequest without a header map, for internal/h2client,
// which takes o's fields as they are.
func (o *outbound) bareRequest(ctx context.Context, scheme, addr string) *http.Request {
	r := o.in
	out := r.WithContext(ctx) // shallow copy
	u := &url.URL{Scheme: scheme, Host: addr, RawQuery: o.Query, ForceQuery: o.ForceQuery}
	setEscapedPath(u, o.Path)
	out.URL = u
	out.Host = o.Host
	out.Body = o.body
	out.ContentLength = o.ContentLength
	out.TransferEncoding = nil
	if o.te != nil {
		out.TransferEncoding = append([]string(nil), o.te...)
	}
	out.Close = false
	out.RequestURI = ""
	if r.Trailer != nil {
		out.Trailer = r.Trailer.Clone()
	}
	out.Header = nil
	return out
}

// header makes o's fields a header map whose values share one backing
// array. Each value slice is capped at its length, so appending to one
// header reallocates instead of overwriting its neighbour. The map is
// sized exactly: a hint above 8 entries costs a Swiss-table directory even
// when most keys are then repeated.
func (o *outbound) header() http.Header {
	n := 0
	for i := range o.Fields {
		if !upstream.FramingField(o.Fields[i].Name) {
			n++
		}
	}
	h := make(http.Header, n+1)
	vals := make([]string, 0, n+1)
	for _, f := range o.Fields {
		if upstream.FramingField(f.Name) {
			continue // the Transport writes the framing from the body
		}
		k := http.CanonicalHeaderKey(f.Name)
		if prev, ok := h[k]; ok {
			h[k] = append(prev, f.Value)
			continue
		}
		vals = append(vals, f.Value)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if _, ok := h["User-Agent"]; !ok {
		vals = append(vals, "") // keep Go's default User-Agent out
		h["User-Agent"] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return h
}

// dropConnectionNamed deletes from h the headers that the Connection header
// values conn name, without allocating the split list.
func dropConnectionNamed(h http.Header, conn []string) {
	for _, v := range conn {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if name = strings.TrimSpace(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
}

// isHopHeader reports a canonical key that is hop-by-hop by itself.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(k, "Proxy-")
}
