package proxy

import (
	"net/http"
	"net/url"

	"github.com/false-systems/rauta/internal/router"
)

// filterState carries what filters need across route and backend filters.
type filterState struct {
	// The request as received: redirects are computed from it.
	scheme, host, path, query string
	// respMods are response header modifiers, applied in order to the
	// response.
	respMods []*router.HeaderModifier
	// mirrorBody is the buffered request body once a mirror needed it;
	// bodyState says whether it was read and whether mirrors may use it.
	mirrorBody []byte
	bodyState  bodyState
	// fail is the request's endpoint and its failover (failover.go).
	fail failover
	// Telemetry of the attempts (telemetry.go): the request's trace
	// context and ID, the chosen backend's metrics, and what the last
	// attempt got.
	trace     traceCtx
	requestID string
	backend   *backendMetrics
	up        upstreamResult
}

type bodyState uint8

const (
	bodyUnread bodyState = iota
	bodyBuffered
	bodyTooLarge
)

// runFilters applies filters in order to the outbound request. It returns
// true when a filter answered the request (a redirect).
func (s *Server) runFilters(w http.ResponseWriter, out *http.Request, rreq *router.Request, fs []router.Filter, st *filterState) bool {
	for i := range fs {
		f := &fs[i]
		switch f.Kind {
		case router.FilterRequestHeaders:
			f.Headers.Apply(out.Header)
			// net/http sends Host from the request, not its header map.
			if v, ok := out.Header["Host"]; ok {
				if len(v) > 0 && v[0] != "" {
					out.Host = v[0]
				}
				delete(out.Header, "Host")
			}
		case router.FilterResponseHeaders:
			st.respMods = append(st.respMods, f.Headers)
		case router.FilterRedirect:
			writeFilterAnswer(w, f.Redirect.StatusCode, st, func(h http.Header) {
				h.Set("Location", f.Redirect.Location(st.scheme, st.host, st.path, st.query))
			})
			return true
		case router.FilterRewrite:
			if f.Rewrite.Hostname != "" {
				out.Host = f.Rewrite.Hostname
			}
			if p, ok := f.Rewrite.Path(st.path); ok {
				setEscapedPath(out.URL, p)
			}
		case router.FilterMirror:
			s.fwd.mirror(out, f.Mirror, rreq, st)
		case router.FilterCORS:
			if m := corsPreflight(f.CORS, out.Method, out.Header.Get); m != nil {
				writeFilterAnswer(w, http.StatusOK, st, m.Apply)
				return true
			}
			if m := f.CORS.Response(out.Header.Get("Origin")); m != nil {
				st.respMods = append(st.respMods, m)
			}
		}
	}
	return false
}

// setEscapedPath makes u send the escaped path p as is.
func setEscapedPath(u *url.URL, p string) {
	if dec, err := url.PathUnescape(p); err == nil {
		u.Path, u.RawPath = dec, p
		return
	}
	u.Path, u.RawPath = p, ""
}

// writeFilterAnswer writes a response a filter makes itself (a redirect, a
// CORS preflight answer): the response header modifiers met so far, then
// set's headers, and no body.
func writeFilterAnswer(w http.ResponseWriter, status int, st *filterState, set func(http.Header)) {
	h := w.Header()
	for _, m := range st.respMods {
		m.Apply(h)
	}
	set(h)
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// corsPreflight returns the headers answering a CORS preflight request, or
// nil when the request is not one. The gateway answers every preflight on a
// CORS route itself; one from an origin that is not allowed gets no CORS
// headers, so the browser refuses the cross-origin call.
func corsPreflight(c *router.CORS, method string, header func(string) string) *router.HeaderModifier {
	origin, reqMethod := header("Origin"), header("Access-Control-Request-Method")
	if !router.IsPreflight(method, origin, reqMethod) {
		return nil
	}
	return c.PreflightResponse(origin, reqMethod, header("Access-Control-Request-Headers"))
}
