package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/upstream"
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

// filterAnswer is a response a filter makes itself instead of forwarding
// (a redirect, a CORS preflight answer); status 0 means none.
type filterAnswer struct {
	status   int
	location string
	headers  *router.HeaderModifier
}

// set puts the answer's own headers in h, whichever engine's it is.
func (a *filterAnswer) set(h router.HeaderEditor) {
	if a.location != "" {
		h.Set("Location", a.location)
	}
	if a.headers != nil {
		a.headers.ApplyTo(h)
	}
}

// runFilters applies fs in order to the outbound request, for both
// engines: it is the one place filters run. It returns the answer a
// filter made itself, if one did; then nothing is forwarded. Mirror
// filters only occur on net/http's path: the HTTP/1.1 engine hands their
// requests to it before filters run.
func (s *Server) runFilters(o *outbound, rreq *router.Request, fs []router.Filter, st *filterState) filterAnswer {
	for i := range fs {
		f := &fs[i]
		switch f.Kind {
		case router.FilterRequestHeaders:
			f.Headers.ApplyTo((*reqEditor)(&o.Request))
		case router.FilterResponseHeaders:
			st.respMods = append(st.respMods, f.Headers)
		case router.FilterRedirect:
			return filterAnswer{status: f.Redirect.StatusCode, location: f.Redirect.Location(st.scheme, st.host, st.path, st.query)}
		case router.FilterRewrite:
			if f.Rewrite.Hostname != "" {
				o.Host = f.Rewrite.Hostname
			}
			if p, ok := f.Rewrite.Path(st.path); ok {
				var u url.URL
				setEscapedPath(&u, p) // what the Transport would send for p
				o.Path = u.EscapedPath()
			}
		case router.FilterMirror:
			s.fwd.mirror(o, f.Mirror, rreq, st)
		case router.FilterCORS:
			get := func(name string) string { v, _ := o.Fields.Lookup(name); return v }
			if m := corsPreflight(f.CORS, o.Method, get); m != nil {
				return filterAnswer{status: http.StatusOK, headers: m}
			}
			if m := f.CORS.Response(get("Origin")); m != nil {
				st.respMods = append(st.respMods, m)
			}
		}
	}
	return filterAnswer{}
}

// reqEditor lets request header filters edit the outbound request's
// fields. Host is not a field here: setting (or adding) it changes the
// Host sent; removing it is ignored.
type reqEditor upstream.Request

func (e *reqEditor) Set(name, value string) {
	if len(name) == 4 && strings.EqualFold(name, "Host") {
		if value != "" {
			e.Host = value
		}
		return
	}
	e.Fields.Set(name, value)
}

func (e *reqEditor) Add(name, value string) {
	if len(name) == 4 && strings.EqualFold(name, "Host") {
		e.Set(name, value)
		return
	}
	e.Fields.Add(name, value)
}

func (e *reqEditor) Del(name string) {
	if len(name) != 4 || !strings.EqualFold(name, "Host") {
		e.Fields.Del(name)
	}
}

// setEscapedPath makes u send the escaped path p as is.
func setEscapedPath(u *url.URL, p string) {
	if dec, err := url.PathUnescape(p); err == nil {
		u.Path, u.RawPath = dec, p
		return
	}
	u.Path, u.RawPath = p, ""
}

// writeFilterAnswer writes net/http's response of a filter's answer: the
// response header modifiers met so far, then the answer's headers, and no
// body.
func writeFilterAnswer(w http.ResponseWriter, a *filterAnswer, st *filterState) {
	h := w.Header()
	for _, m := range st.respMods {
		m.Apply(h)
	}
	a.set(h)
	h.Set("Content-Length", "0")
	w.WriteHeader(a.status)
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
