package main

// The many-routes cell: RAUTA with bench/routegen's HTTPRoutes, and nginx
// and HAProxy with the same routes written in their own configuration.
// Every route answers with "X-Route: namespace/name" (a
// ResponseHeaderModifier for RAUTA, add_header for nginx, http-response
// set-header for HAProxy), so the harness can check that each proxy sent a
// request to the route RAUTA would, and every proxy does that same work.

import (
	"fmt"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/resources"
)

// benchRoute is one generated HTTPRoute in the terms the nginx and HAProxy
// configs need, read back from routegen's objects (not from its rules), so
// all three configs come from the same input.
type benchRoute struct {
	NS, Name string
	// Host is the route's hostname: its own, or routegen.SharedHost.
	Host string
	// Prefix is the path prefix of a route on the shared host, rewritten to
	// "/" (ReplacePrefixMatch); empty for routes with their own host.
	Prefix string
	// Regex is an extra RegularExpression path match (legacy routes).
	Regex string
	// Canary is the PathPrefix of the rule that needs GET and
	// "X-Canary: true" and modifies request headers; empty when none.
	Canary string
	// Port is the backend endpoint the route's Service points at.
	Port int
}

func (r benchRoute) id() string { return r.NS + "/" + r.Name }

// upstream names the backend endpoint in nginx and HAProxy.
func (r benchRoute) upstream() string { return fmt.Sprintf("p%d", r.Port) }

// routeEndpointPort spreads the routes' Services over the three backend
// endpoints.
func routeEndpointPort(i int) int { return backendBasePort + i%endpoints }

// benchRoutes reads the routes of routegen.Resources back. It fails on a
// shape it does not know how to write for nginx and HAProxy, so a change
// to routegen cannot silently make the configs differ.
func benchRoutes(res *resources.Resources) ([]benchRoute, error) {
	out := make([]benchRoute, 0, len(res.HTTPRoutes))
	for i, rt := range res.HTTPRoutes {
		if len(rt.Spec.Hostnames) != 1 {
			return nil, fmt.Errorf("route %s/%s: %d hostnames, want 1", rt.Namespace, rt.Name, len(rt.Spec.Hostnames))
		}
		br := benchRoute{NS: rt.Namespace, Name: rt.Name, Host: string(rt.Spec.Hostnames[0]), Port: routeEndpointPort(i)}
		for _, rule := range rt.Spec.Rules {
			if len(rule.Matches) != 1 || rule.Matches[0].Path == nil {
				return nil, fmt.Errorf("route %s: a rule with %d matches", br.id(), len(rule.Matches))
			}
			m := rule.Matches[0]
			typ, val := *m.Path.Type, *m.Path.Value
			switch {
			case typ == gwv1.PathMatchRegularExpression:
				br.Regex = val
			case typ == gwv1.PathMatchPathPrefix && hasPrefixRewrite(rule):
				br.Prefix = val
			case typ == gwv1.PathMatchPathPrefix && len(m.Headers) > 0:
				br.Canary = val
			case typ == gwv1.PathMatchPathPrefix && val == "/", typ == gwv1.PathMatchExact:
				// catch-all and /healthz: same backend, no filter
			default:
				return nil, fmt.Errorf("route %s: path match %s %q not known to the nginx and HAProxy generators", br.id(), typ, val)
			}
		}
		if (br.Host == routegen.SharedHost) != (br.Prefix != "") {
			return nil, fmt.Errorf("route %s: host %s with prefix %q", br.id(), br.Host, br.Prefix)
		}
		// HAProxy routes the shared host by its first path segment.
		if seg := strings.TrimPrefix(br.Prefix, "/"); br.Prefix != "" && (seg == "" || strings.Contains(seg, "/")) {
			return nil, fmt.Errorf("route %s: prefix %q is not one path segment", br.id(), br.Prefix)
		}
		// HAProxy applies the canary rule's header changes by path alone.
		if br.Prefix == "" && br.Canary != canaryPrefix {
			return nil, fmt.Errorf("route %s: canary rule on %q, the HAProxy config assumes %q", br.id(), br.Canary, canaryPrefix)
		}
		out = append(out, br)
	}
	return out, nil
}

// canaryPrefix is the path of routegen's canary rule on own hostnames.
const canaryPrefix = "/api/v2"

func hasPrefixRewrite(rule gwv1.HTTPRouteRule) bool {
	for _, f := range rule.Filters {
		if f.URLRewrite != nil && f.URLRewrite.Path != nil && f.URLRewrite.Path.ReplacePrefixMatch != nil {
			return true
		}
	}
	return false
}

// routesNginxConfig writes one server block per own hostname and one for
// the shared host with a location per route. Locations follow Gateway API
// semantics: PathPrefix /p is "= /p" plus "/p/", a regex is anchored.
func (e *env) routesNginxConfig(routes []benchRoute) string {
	var b strings.Builder
	b.WriteString(e.nginxCommon("nginx"))
	b.WriteString("  server_names_hash_max_size 65536;\n  server_names_hash_bucket_size 128;\n")
	b.WriteString("  proxy_http_version 1.1;\n  proxy_set_header Host $host;\n  proxy_set_header Connection \"\";\n  proxy_buffers 16 8k;\n")
	for _, p := range endpointPorts() {
		fmt.Fprintf(&b, "  upstream p%d {\n    server 127.0.0.1:%d;\n    keepalive 256;\n    keepalive_requests 10000000;\n  }\n", p, p)
	}
	fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d default_server backlog=4096;\n    return 404;\n  }\n", httpPort)
	var shared strings.Builder
	for _, r := range routes {
		if r.Prefix != "" {
			hdr := fmt.Sprintf("add_header X-Route %s always; ", r.id())
			fmt.Fprintf(&shared, "    location = %s { %sproxy_pass http://%s/; }\n", r.Prefix, hdr, r.upstream())
			fmt.Fprintf(&shared, "    location %s/ { %sproxy_pass http://%s/; }\n", r.Prefix, hdr, r.upstream())
			if r.Regex != "" {
				fmt.Fprintf(&shared, "    location ~ \"^(?:%s)$\" { %sproxy_pass http://%s; }\n", r.Regex, hdr, r.upstream())
			}
			continue
		}
		fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d;\n    server_name %s;\n    add_header X-Route %s always;\n", httpPort, r.Host, r.id())
		if r.Canary != "" {
			// GET with "X-Canary: true" takes the rule that sets X-Team,
			// adds X-Route and removes X-Internal-Debug; anything else falls
			// through to the catch-all, which modifies nothing.
			canary := fmt.Sprintf(`{
      set $canary "$request_method:$http_x_canary";
      set $x_team ""; set $x_route ""; set $x_debug $http_x_internal_debug;
      if ($canary = "GET:true") { set $x_team %s; set $x_route %s; set $x_debug ""; }
      proxy_set_header Host $host;
      proxy_set_header Connection "";
      proxy_set_header X-Team $x_team;
      proxy_set_header X-Route $x_route;
      proxy_set_header X-Internal-Debug $x_debug;
      proxy_pass http://%s;
    }
`, r.NS, r.Name, r.upstream())
			fmt.Fprintf(&b, "    location = %s %s    location %s/ %s", r.Canary, canary, r.Canary, canary)
		}
		fmt.Fprintf(&b, "    location / { proxy_pass http://%s; }\n  }\n", r.upstream())
	}
	fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d;\n    server_name %s;\n    location / { return 404; }\n%s  }\n}\n", httpPort, routegen.SharedHost, shared.String())
	return b.String()
}

// routesHAProxyConfig routes with maps, as a large HAProxy setup would:
// hostname to route, first path segment to route on the shared host (a
// PathPrefix of one segment), anchored regexes after that, route to
// backend. The map files are returned by name.
func (e *env) routesHAProxyConfig(routes []benchRoute) (cfg string, maps map[string]string) {
	var hosts, prefixes, regexes, backends strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&backends, "%s %s\n", r.id(), r.upstream())
		switch {
		case r.Prefix != "":
			fmt.Fprintf(&prefixes, "%s %s\n", strings.TrimPrefix(r.Prefix, "/"), r.id())
			if r.Regex != "" {
				fmt.Fprintf(&regexes, "^(?:%s)$ %s\n", r.Regex, r.id())
			}
		default:
			fmt.Fprintf(&hosts, "%s %s\n", r.Host, r.id())
		}
	}
	maps = map[string]string{"hosts.map": hosts.String(), "prefixes.map": prefixes.String(),
		"regexes.map": regexes.String(), "backends.map": backends.String()}
	var b strings.Builder
	fmt.Fprintf(&b, `global
  nbthread 1
  maxconn 4096
  pidfile %[1]s/haproxy.pid
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:%[2]d
  http-request set-var(txn.host) req.hdr(host),field(1,:),lower
  acl shared var(txn.host) -m str %[3]s
  http-request set-var(txn.route) var(txn.host),map(%[1]s/hosts.map) unless shared
  http-request set-var(txn.seg) path,field(2,/),map(%[1]s/prefixes.map) if shared
  http-request replace-path ^/[^/]*/?(.*)$ /\1 if shared { var(txn.seg) -m found }
  http-request set-var(txn.route) var(txn.seg) if { var(txn.seg) -m found }
  http-request set-var(txn.route) path,map_reg(%[1]s/regexes.map) if shared !{ var(txn.route) -m found }
  http-request deny deny_status 404 unless { var(txn.route) -m found }
  acl canary_path path %[4]s
  acl canary_path path_beg %[4]s/
  acl canary method GET
  acl canary_hdr req.hdr(x-canary) -m str true
  http-request set-header X-Team %%[var(txn.route),field(1,/)] if !shared canary_path canary canary_hdr
  http-request add-header X-Route %%[var(txn.route),field(2,/)] if !shared canary_path canary canary_hdr
  http-request del-header X-Internal-Debug if !shared canary_path canary canary_hdr
  http-response set-header X-Route %%[var(txn.route)]
  use_backend %%[var(txn.route),map(%[1]s/backends.map)]
`, e.path("haproxy-routes"), httpPort, routegen.SharedHost, canaryPrefix)
	for _, p := range endpointPorts() {
		fmt.Fprintf(&b, "backend p%d\n  server s 127.0.0.1:%d\n", p, p)
	}
	return b.String(), maps
}
