package proxy

import (
	"context"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// newOutbound builds the request sent to the backend: a copy of r with
// hop-by-hop headers removed and X-Forwarded-* set, and X-Request-Id
// replaced by requestID unless that is "" (the client's is kept).
// Filters then modify it.
//
// It is the per-request hot path, so instead of r.Clone followed by
// deletes and Sets (about eight allocations) it makes one shallow copy, one
// URL copy, one header map and one backing array that holds every header
// value, including the ones the proxy adds.
func newOutbound(ctx context.Context, r *http.Request, scheme, ip, upgrade, requestID string) *http.Request {
	out := r.WithContext(ctx) // shallow copy
	u := *r.URL
	out.URL = &u
	if r.ContentLength == 0 {
		out.Body = nil // a nil body lets the transport reuse connections freely
	}
	out.Close = false
	out.RequestURI = ""
	if r.Trailer != nil {
		out.Trailer = r.Trailer.Clone()
	}
	if r.TransferEncoding != nil {
		out.TransferEncoding = append([]string(nil), r.TransferEncoding...)
	}

	wantTrailers := httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers")
	_, hasUA := r.Header["User-Agent"]
	added := 3 // X-Forwarded-For, -Proto, -Host
	if wantTrailers {
		added++
	}
	if upgrade != "" {
		added += 2
	}
	if !hasUA {
		added++
	}
	if requestID != "" {
		added++
	}
	h := outboundHeader(r.Header, added)
	if wantTrailers {
		h.set("Te", "trailers") // gRPC needs it end to end
	}
	if upgrade != "" {
		h.set("Connection", "Upgrade")
		h.set("Upgrade", upgrade)
	}
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	h.set("X-Forwarded-For", ip)
	h.set("X-Forwarded-Proto", scheme)
	h.set("X-Forwarded-Host", r.Host)
	if requestID != "" {
		h.set("X-Request-Id", requestID)
	}
	if _, ok := h.m["User-Agent"]; !ok {
		h.set("User-Agent", "") // keep Go's default User-Agent out
	}
	out.Header = h.m
	return out
}

// headerBuilder fills a header map whose values share one backing array.
type headerBuilder struct {
	m    http.Header
	vals []string
}

// set replaces the values of a canonical key with v. Each value slice is
// capped at its length, so a filter appending to one header reallocates
// instead of overwriting its neighbour in the shared array.
func (b *headerBuilder) set(key, v string) {
	b.vals = append(b.vals, v)
	n := len(b.vals)
	b.m[key] = b.vals[n-1 : n : n]
}

// outboundHeader copies src without the hop-by-hop headers (RFC 9110
// 7.6.1): the fixed list, every Proxy-* header and the headers Connection
// names. Filters run after, so they can neither resurrect nor be defeated by
// them. added is how many values the caller will set; the map is sized
// exactly, because a hint above 8 entries costs a Swiss-table directory
// (three more allocations) even when most keys are then skipped.
func outboundHeader(src http.Header, added int) headerBuilder {
	n := 0
	for _, vv := range src {
		n += len(vv)
	}
	b := headerBuilder{
		m:    make(http.Header, len(src)+added),
		vals: make([]string, 0, n+added),
	}
	for k, vv := range src {
		if isHopHeader(k) || len(vv) == 0 {
			continue
		}
		start := len(b.vals)
		b.vals = append(b.vals, vv...)
		b.m[k] = b.vals[start:len(b.vals):len(b.vals)]
	}
	dropConnectionNamed(b.m, src["Connection"])
	return b
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
