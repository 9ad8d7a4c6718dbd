package proxy

import (
	"net/http"
	"strings"

	"github.com/false-systems/rauta/internal/router"
)

// routePath is the path both engines match and forward: received, then
// normalised as Options.Paths says (router.NormalizePath). false means the
// request gets 400: a malformed escape, an escaped slash the options
// reject, or an HTTP/2 :path that is not origin-form (RFC 9113 8.3.1: an
// absolute URI there is malformed, and would make the route match a path
// the client did not send as one).
func (s *Server) routePath(r *http.Request, path string) (string, bool) {
	if r != nil && r.ProtoMajor == 2 && r.Method != http.MethodConnect &&
		!strings.HasPrefix(r.RequestURI, "/") && (r.Method != http.MethodOptions || r.RequestURI != "*") {
		return path, false
	}
	if path == "*" {
		return path, true // OPTIONS *: no path to normalise
	}
	p, err := router.NormalizePath(path, s.opts.Paths)
	return p, err == nil
}

// msgBadPath is the 400 body for a path routePath refused.
const msgBadPath = "bad request path"
