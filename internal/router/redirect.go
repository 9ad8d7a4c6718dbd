package router

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// Redirect is a compiled ir.Redirect.
type Redirect struct {
	// StatusCode is the redirect status, 302 when unset.
	StatusCode int

	scheme       string
	hostname     string
	port         uint32
	path         *pathModifier
	listenerPort uint32
}

func compileRedirect(r *ir.Redirect, ctx filterContext) (*Redirect, error) {
	pm, err := compilePathModifier(r.Path, ctx.path)
	if err != nil {
		return nil, err
	}
	code := r.StatusCode
	if code == 0 {
		code = http.StatusFound
	}
	if code < 300 || code > 399 {
		return nil, fmt.Errorf("statusCode %d is not a redirect", code)
	}
	if r.Port > 65535 {
		return nil, fmt.Errorf("port %d out of range", r.Port)
	}
	return &Redirect{
		StatusCode:   code,
		scheme:       strings.ToLower(r.Scheme),
		hostname:     r.Hostname,
		port:         r.Port,
		path:         pm,
		listenerPort: ctx.listenerPort,
	}, nil
}

// Location computes the redirect target for a request that arrived with
// scheme ("http" or "https"), host (Host header, port optional), escaped path
// and raw query. It follows the Gateway API port rules: an explicit port
// wins; else a redirect that sets a scheme uses that scheme's well-known
// port; else the listener's port. Port 80 with http and 443 with https are
// left out of the Location.
func (r *Redirect) Location(scheme, host, path, rawQuery string) string {
	port := r.port
	if r.scheme != "" {
		scheme = r.scheme
		if port == 0 {
			port = defaultPort(scheme)
		}
	}
	if port == 0 {
		port = r.listenerPort
	}
	hostname := r.hostname
	if hostname == "" {
		hostname = strings.TrimSuffix(stripPort(host), ".")
	}
	if r.path != nil {
		path = r.path.apply(path)
	}
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	b.Grow(len(scheme) + len(hostname) + len(path) + len(rawQuery) + 16)
	b.WriteString(scheme)
	b.WriteString("://")
	if port != 0 && port != defaultPort(scheme) {
		if strings.IndexByte(hostname, ':') >= 0 && !strings.HasPrefix(hostname, "[") {
			hostname = "[" + hostname + "]"
		}
		b.WriteString(hostname)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(uint64(port), 10))
	} else {
		b.WriteString(hostname)
	}
	b.WriteString(path)
	if rawQuery != "" {
		b.WriteByte('?')
		b.WriteString(rawQuery)
	}
	return b.String()
}

// defaultPort is the well-known port of a scheme, 0 when it has none.
func defaultPort(scheme string) uint32 {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}
