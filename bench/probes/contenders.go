package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/false-systems/rauta/bench/internal/manifests"

	"github.com/false-systems/rauta/internal/freeport"
)

// route is one path prefix and the endpoints behind it, the same on every
// proxy. Requests outside every prefix get 404.
type route struct {
	name   string // also the Service name in RAUTA's manifests
	prefix string // ends in "/"
	eps    []string
}

func (b *backends) routes() []route {
	return []route{
		{"api", "/api/", []string{b.echo1}},
		{"twoep", "/twoep/", []string{b.echo2, b.dead}},
		{"slow", "/slow/", []string{b.slow}},
		{"reset", "/reset/", []string{b.resetHead}},
		{"resetbody", "/resetbody/", []string{b.resetBody}},
		{"garbage", "/garbage/", []string{b.garbage}},
		{"bighdr", "/bighdr/", []string{b.bigHeaders}},
	}
}

// contender is one proxy under test: how to start it and where it listens.
type contender struct {
	name   string
	argv   []string
	env    []string
	config string // path of the file it reads
	h1     string // HTTP/1.1 listener
	h2     string // h2c (prior knowledge) listener
}

// freePorts returns n loopback ports nothing listens on right now, outside
// the ephemeral range (internal/freeport).
func freePorts(n int) ([]int, error) {
	return freeport.Ports(n)
}

// newContender writes name's configuration into dir. Every proxy keeps its
// defaults except the timeouts, all set to t so the timeout probes are
// short and judged against the same value, and one worker.
func newContender(name, dir, rautaBin string, routes []route, t time.Duration) (*contender, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	c := &contender{name: name, h1: fmt.Sprintf("127.0.0.1:%d", ports[0]), h2: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	secs := int(t.Round(time.Second) / time.Second)
	switch name {
	case "rauta":
		mdir := filepath.Join(dir, "rauta")
		if err := os.MkdirAll(mdir, 0o755); err != nil {
			return nil, err
		}
		c.config = filepath.Join(mdir, "probes.yaml")
		ts := t.String()
		c.argv = []string{rautaBin, "run", "-f", mdir, "-address", "127.0.0.1",
			"-admin-addr", fmt.Sprintf("127.0.0.1:%d", ports[2]), "-metrics-addr=", "-access-log=false", "-log-level", "warn",
			"-read-header-timeout", ts, "-client-body-timeout", ts, "-client-send-timeout", ts,
			"-backend-response-timeout", ts, "-backend-idle-timeout", ts, "-idle-timeout", ts}
		err = os.WriteFile(c.config, []byte(rautaManifests(ports[0], ports[1], routes)), 0o644)
	case "nginx":
		c.config = filepath.Join(dir, "nginx.conf")
		c.argv = []string{"nginx", "-p", dir, "-c", c.config, "-e", filepath.Join(dir, "nginx-error.log")}
		err = os.WriteFile(c.config, []byte(nginxConfig(dir, c.h1, c.h2, routes, secs)), 0o644)
	case "haproxy":
		c.config = filepath.Join(dir, "haproxy.cfg")
		c.argv = []string{"haproxy", "-db", "-f", c.config}
		err = os.WriteFile(c.config, []byte(haproxyConfig(dir, c.h1, c.h2, routes, secs)), 0o644)
	default:
		return nil, fmt.Errorf("unknown proxy %q (known: rauta, nginx, haproxy)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: write config: %w", name, err)
	}
	return c, nil
}

// rautaManifests: one Gateway with an HTTP listener for HTTP/1.1 and one
// for h2c (RAUTA recognises the preface on any HTTP listener), an HTTPRoute
// rule per route, a Service and an EndpointSlice per endpoint.
func rautaManifests(h1, h2 int, routes []route) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: rauta
spec:
  controllerName: rauta.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: probes
  namespace: default
spec:
  gatewayClassName: rauta
  listeners:
  - name: h1
    port: %d
    protocol: HTTP
  - name: h2c
    port: %d
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: probes
  namespace: default
spec:
  parentRefs:
  - name: probes
  rules:
`, h1, h2)
	for _, r := range routes {
		fmt.Fprintf(&b, "  - matches:\n    - path:\n        type: PathPrefix\n        value: %s\n    backendRefs:\n    - name: %s\n      port: 80\n",
			strings.TrimSuffix(r.prefix, "/"), r.name)
	}
	for _, r := range routes {
		ports := make([]int, len(r.eps))
		for i, ep := range r.eps {
			_, p, _ := net.SplitHostPort(ep)
			ports[i], _ = strconv.Atoi(p)
		}
		b.WriteString(manifests.LoopbackService(r.name, ports...))
	}
	return b.String()
}

// nginxConfig: nginx's defaults (limits, proxy_next_upstream) with every
// timeout at secs.
func nginxConfig(dir, h1, h2 string, routes []route, secs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  client_header_timeout %[2]ds;
  client_body_timeout %[2]ds;
  send_timeout %[2]ds;
  keepalive_timeout %[2]ds;
  proxy_connect_timeout %[2]ds;
  proxy_read_timeout %[2]ds;
  proxy_send_timeout %[2]ds;
`, dir, secs)
	for _, r := range routes {
		fmt.Fprintf(&b, "  upstream %s {\n", r.name)
		for _, ep := range r.eps {
			fmt.Fprintf(&b, "    server %s;\n", ep)
		}
		b.WriteString("  }\n")
	}
	fmt.Fprintf(&b, "  server {\n    listen %s;\n    listen %s http2;\n", h1, h2)
	for _, r := range routes {
		fmt.Fprintf(&b, "    location %s {\n      proxy_pass http://%s;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n", r.prefix, r.name)
	}
	b.WriteString("    location / { return 404; }\n  }\n}\n")
	return b.String()
}

// haproxyConfig: HAProxy's defaults with every timeout at secs, one thread.
func haproxyConfig(dir, h1, h2 string, routes []route, secs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  nbthread 1
  maxconn 4096
  pidfile %[1]s/haproxy.pid
defaults
  mode http
  timeout connect %[2]ds
  timeout client %[2]ds
  timeout server %[2]ds
  timeout http-request %[2]ds
  timeout http-keep-alive %[2]ds
frontend fe
  bind %[3]s
  bind %[4]s proto h2
`, dir, secs, h1, h2)
	for _, r := range routes {
		fmt.Fprintf(&b, "  use_backend %s if { path_beg %s }\n", r.name, r.prefix)
	}
	b.WriteString("  default_backend notfound\nbackend notfound\n  http-request return status 404\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "backend %s\n", r.name)
		for i, ep := range r.eps {
			fmt.Fprintf(&b, "  server s%d %s\n", i, ep)
		}
	}
	return b.String()
}
