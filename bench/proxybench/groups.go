package main

import (
	"fmt"
	"slices"
	"strings"
)

// Groups of cells a run can select with -cells. "http" is the original
// table (wrk and h2load over keep-alive connections); the others are the
// cells issue 18 point 1 added, each measured by its own client.
const (
	groupHTTP   = "http"   // HTTP/1.1 and HTTP/2 keep-alive, wrk and h2load
	groupTLS    = "tls"    // a new TLS connection per request: handshakes/s
	groupIdle   = "idle"   // memory per idle keep-alive connection
	groupGRPC   = "grpc"   // gRPC unary and server streaming over h2c
	groupWS     = "ws"     // WebSocket message relay
	groupRoutes = "routes" // 10,000 routes end to end
)

var allGroups = []string{groupHTTP, groupTLS, groupIdle, groupGRPC, groupWS, groupRoutes}

// parseGroups reads the -cells list; "all" selects every group.
func parseGroups(list string) ([]string, error) {
	var out []string
	for _, g := range strings.Split(list, ",") {
		g = strings.TrimSpace(g)
		switch {
		case g == "":
		case g == "all":
			return slices.Clone(allGroups), nil
		case !slices.Contains(allGroups, g):
			return nil, fmt.Errorf("-cells: unknown group %q (known: all, %s)", g, strings.Join(allGroups, ", "))
		case !slices.Contains(out, g):
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-cells: no group selected")
	}
	return out, nil
}

// takesPart says whether a contender is measured in a group: a direct
// connection has no proxy to terminate TLS, hold idle connections or load
// routes, and Caddy is left out of the many-routes cell (its Caddyfile
// would need one matcher per route and is not what the issue asks for).
func takesPart(contender, group string) bool {
	contender, _ = contenderKind(contender)
	switch group {
	case groupTLS, groupIdle:
		return contender != "direct"
	case groupRoutes:
		return contender == "rauta" || contender == rautaB || contender == rautaDP || contender == "nginx" || contender == "haproxy"
	}
	return true
}
