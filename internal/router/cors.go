package router

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// CORS is a compiled ir.CORS. The gateway answers a preflight request
// itself (Preflight) and adds headers to what an allowed origin's other
// requests get back (Actual). It always echoes the request's Origin, never
// "*": the spec allows that in every case and requires it with credentials,
// and one behaviour is easier to reason about.
type CORS struct {
	anyOrigin bool
	origins   []originPattern
	// methods, headers: the configured lists joined for the response; any*:
	// "*" was configured, so the request's own value is echoed.
	methods, headers     string
	anyMethod, anyHeader bool
	expose               string
	credentials          bool
	maxAge               string
}

// originPattern is one allowed origin: scheme and port exact, host exact or,
// with wildcard, any host ending in suffix (".bar.com" for "*.bar.com").
type originPattern struct {
	scheme, host string
	port         int
	wildcard     bool
}

func compileCORS(c *ir.CORS) (*CORS, error) {
	out := &CORS{credentials: c.AllowCredentials, maxAge: strconv.Itoa(int(c.MaxAge))}
	if c.MaxAge <= 0 {
		out.maxAge = "5" // the spec's default
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			out.anyOrigin = true
			continue
		}
		p, err := parseOriginPattern(o)
		if err != nil {
			return nil, err
		}
		out.origins = append(out.origins, p)
	}
	var methods []string
	for _, m := range c.AllowMethods {
		if m == "*" {
			out.anyMethod = true
			continue
		}
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	out.methods = strings.Join(methods, ", ")
	var headers []string
	for _, h := range c.AllowHeaders {
		if h == "*" {
			out.anyHeader = true
			continue
		}
		if !slices.ContainsFunc(headers, func(x string) bool { return strings.EqualFold(x, h) }) {
			headers = append(headers, h)
		}
	}
	out.headers = strings.Join(headers, ", ")
	var expose []string
	for _, h := range c.ExposeHeaders {
		if h == "*" {
			if !c.AllowCredentials {
				expose = []string{"*"}
				break
			}
			// With credentials "*" is a literal header name to browsers;
			// the listed names still go out.
			continue
		}
		expose = append(expose, h)
	}
	out.expose = strings.Join(expose, ", ")
	return out, nil
}

// ValidCORSOrigin reports why an allowed origin of a CORS filter cannot be
// used, or nil.
func ValidCORSOrigin(s string) error {
	if s == "*" {
		return nil
	}
	_, err := parseOriginPattern(s)
	return err
}

// parseOriginPattern parses "scheme://host[:port]", host possibly starting
// with "*".
func parseOriginPattern(s string) (originPattern, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" {
		return originPattern{}, fmt.Errorf("cors: origin %q is not scheme://host[:port] with scheme http or https", s)
	}
	host, port, err := splitOriginHost(scheme, rest)
	if err != nil {
		return originPattern{}, fmt.Errorf("cors: origin %q: %w", s, err)
	}
	p := originPattern{scheme: scheme, host: host, port: port}
	if strings.HasPrefix(host, "*") {
		p.wildcard, p.host = true, host[1:]
	}
	if strings.Contains(p.host, "*") {
		return originPattern{}, fmt.Errorf("cors: origin %q: only a leading * is allowed", s)
	}
	return p, nil
}

// splitOriginHost splits "host[:port]" and fills in the scheme's default
// port.
func splitOriginHost(scheme, hostport string) (string, int, error) {
	port := 80
	if scheme == "https" {
		port = 443
	}
	host := hostport
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		n, err := strconv.Atoi(hostport[i+1:])
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("port %q", hostport[i+1:])
		}
		host, port = hostport[:i], n
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return "", 0, fmt.Errorf("host %q", host)
	}
	return strings.ToLower(host), port, nil
}

// AllowsOrigin reports whether a request's Origin header value is allowed.
func (c *CORS) AllowsOrigin(origin string) bool {
	if origin == "" {
		return false
	}
	if c.anyOrigin {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	host, port, err := splitOriginHost(scheme, u.Host)
	if err != nil {
		return false
	}
	for _, p := range c.origins {
		if p.scheme != scheme || p.port != port {
			continue
		}
		if p.wildcard {
			if len(host) > len(p.host) && strings.HasSuffix(host, p.host) {
				return true
			}
			continue
		}
		if host == p.host {
			return true
		}
	}
	return false
}

// IsPreflight reports whether a request is a CORS preflight: OPTIONS with
// Origin and Access-Control-Request-Method.
func IsPreflight(method, origin, requestMethod string) bool {
	return method == "OPTIONS" && origin != "" && requestMethod != ""
}

// Preflight adds the headers answering a preflight request from an allowed
// origin; it adds nothing and returns false for any other origin.
// requestMethod and requestHeaders are the Access-Control-Request-Method
// and Access-Control-Request-Headers values.
func (c *CORS) Preflight(origin, requestMethod, requestHeaders string, add func(name, value string)) bool {
	if !c.AllowsOrigin(origin) {
		return false
	}
	add("Access-Control-Allow-Origin", origin)
	add("Vary", "Origin")
	if c.credentials {
		add("Access-Control-Allow-Credentials", "true")
	}
	switch {
	case c.anyMethod:
		add("Access-Control-Allow-Methods", requestMethod)
	case c.methods != "":
		add("Access-Control-Allow-Methods", c.methods)
	}
	if requestHeaders != "" {
		switch {
		case c.anyHeader:
			add("Access-Control-Allow-Headers", requestHeaders)
		case c.headers != "":
			add("Access-Control-Allow-Headers", c.headers)
		}
	}
	if c.expose != "" {
		add("Access-Control-Expose-Headers", c.expose)
	}
	add("Access-Control-Max-Age", c.maxAge)
	return true
}

// Actual adds the CORS headers of a response to a request from an allowed
// origin (not a preflight) and reports whether the origin was allowed.
func (c *CORS) Actual(origin string, add func(name, value string)) bool {
	if !c.AllowsOrigin(origin) {
		return false
	}
	add("Access-Control-Allow-Origin", origin)
	add("Vary", "Origin")
	if c.credentials {
		add("Access-Control-Allow-Credentials", "true")
	}
	if c.expose != "" {
		add("Access-Control-Expose-Headers", c.expose)
	}
	return true
}

// PreflightResponse is Preflight as a header modifier (every header set).
// For an origin that is not allowed it sets nothing: the gateway still
// answers the preflight itself, without CORS headers, so the browser
// refuses the call (the spec's 200/204 without the headers).
func (c *CORS) PreflightResponse(origin, requestMethod, requestHeaders string) *HeaderModifier {
	m := &ir.HeaderModifier{}
	c.Preflight(origin, requestMethod, requestHeaders, func(n, v string) { m.Set = append(m.Set, ir.Header{Name: n, Value: v}) })
	return compileHeaderModifier(m)
}

// Response is Actual as a header modifier for the backend's response: the
// CORS headers replace any the backend sent, Vary is added to its own. nil
// when the origin is not allowed.
func (c *CORS) Response(origin string) *HeaderModifier {
	m := &ir.HeaderModifier{}
	ok := c.Actual(origin, func(n, v string) {
		if n == "Vary" {
			m.Add = append(m.Add, ir.Header{Name: n, Value: v})
			return
		}
		m.Set = append(m.Set, ir.Header{Name: n, Value: v})
	})
	if !ok {
		return nil
	}
	return compileHeaderModifier(m)
}
