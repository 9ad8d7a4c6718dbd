package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Ports on loopback. The backend's three endpoints stand for one Service's
// three pods; every proxy serves HTTP on httpPort and HTTPS on httpsPort.
const (
	httpPort        = 18000
	httpsPort       = 18443
	rautaAdminPort  = 18900
	directH2Port    = 18091 // the backend itself, TLS + HTTP/2, for "direct" h2
	backendBasePort = 18081 // endpoints 18081, 18082, 18083
	endpoints       = 3
)

func endpointPorts() []int {
	out := make([]int, endpoints)
	for i := range out {
		out[i] = backendBasePort + i
	}
	return out
}

// env is the temp dir every generated file lives in.
type env struct {
	dir      string
	certFile string
	keyFile  string
	pemFile  string // certificate and key, for HAProxy
	bodies   map[string][]byte
}

// writeCert makes a self-signed ECDSA P-256 certificate for 127.0.0.1 with
// openssl, as the harness's users would.
func (e *env) writeCert(run func(argv ...string) error) error {
	e.certFile = filepath.Join(e.dir, "cert.pem")
	e.keyFile = filepath.Join(e.dir, "key.pem")
	e.pemFile = filepath.Join(e.dir, "haproxy.pem")
	if err := run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-days", "2", "-subj", "/CN=rauta-bench",
		"-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
		"-keyout", e.keyFile, "-out", e.certFile); err != nil {
		return fmt.Errorf("generate certificate: %w", err)
	}
	c, err1 := os.ReadFile(e.certFile)
	k, err2 := os.ReadFile(e.keyFile)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("read certificate: %w", errors.Join(err1, err2))
	}
	return os.WriteFile(e.pemFile, append(append([]byte{}, c...), k...), 0o600)
}

// writeBodies writes the static files the backend serves: deterministic,
// distinct bytes so a wrong or truncated body is caught by the check.
func (e *env) writeBodies() error {
	www := filepath.Join(e.dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return err
	}
	e.bodies = map[string][]byte{}
	for name, size := range map[string]int{"1k": 1 << 10, "64k": 64 << 10} {
		b := make([]byte, size)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i*7+i/36)%36]
		}
		if err := os.WriteFile(filepath.Join(www, name), b, 0o644); err != nil {
			return err
		}
		e.bodies[name] = b
	}
	return nil
}

func (e *env) path(name string) string { return filepath.Join(e.dir, name) }

func (e *env) write(name, content string) (string, error) {
	p := e.path(name)
	return p, os.WriteFile(p, []byte(content), 0o644)
}

// nginxCommon holds the lines that keep nginx inside the temp dir.
func (e *env) nginxCommon(name string) string {
	tmp := e.path(name + "-tmp")
	_ = os.MkdirAll(tmp, 0o755)
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/%[2]s.pid;
error_log %[1]s/%[2]s-error.log warn;
events { worker_connections 8192; }
`, e.dir, name) + fmt.Sprintf(`http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
`, tmp)
}

// backendConfig is the nginx that plays the backend: three plain HTTP
// endpoints tagging responses with X-Backend, plus a TLS/h2 port that is the
// "direct" contender for HTTP/2.
func (e *env) backendConfig() string {
	var b strings.Builder
	b.WriteString(e.nginxCommon("backend"))
	b.WriteString("  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n")
	for i, p := range endpointPorts() {
		fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d reuseport backlog=4096;\n    root %s;\n    add_header X-Backend %d;\n  }\n", p, e.path("www"), i+1)
	}
	fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d ssl http2 backlog=4096;\n    ssl_certificate %s;\n    ssl_certificate_key %s;\n    http2_max_concurrent_streams 256;\n    root %s;\n    add_header X-Backend 1;\n  }\n",
		directH2Port, e.certFile, e.keyFile, e.path("www"))
	b.WriteString("}\n")
	return b.String()
}

// nginxConfig: one upstream of the three endpoints with a keep-alive pool,
// HTTP/1.1 upstream, buffers large enough that a 64 KiB body never spills to
// a temp file.
func (e *env) nginxConfig() string {
	var b strings.Builder
	b.WriteString(e.nginxCommon("nginx"))
	b.WriteString("  upstream pool {\n")
	for _, p := range endpointPorts() {
		fmt.Fprintf(&b, "    server 127.0.0.1:%d;\n", p)
	}
	b.WriteString("    keepalive 256;\n    keepalive_requests 10000000;\n  }\n")
	fmt.Fprintf(&b, `  server {
    listen 127.0.0.1:%d backlog=4096;
    listen 127.0.0.1:%d ssl http2 backlog=4096;
    ssl_certificate %s;
    ssl_certificate_key %s;
    http2_max_concurrent_streams 256;
    location / {
      proxy_pass http://pool;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffers 16 8k;
    }
  }
}
`, httpPort, httpsPort, e.certFile, e.keyFile)
	return b.String()
}

// haproxyConfig: one thread, keep-alive on both sides with connection reuse,
// round robin over the three endpoints, no logging.
func (e *env) haproxyConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  nbthread 1
  maxconn 4096
  pidfile %s/haproxy.pid
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:%d
  bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
  default_backend pool
backend pool
  balance roundrobin
`, e.dir, httpPort, httpsPort, e.pemFile)
	for i, p := range endpointPorts() {
		fmt.Fprintf(&b, "  server s%d 127.0.0.1:%d\n", i+1, p)
	}
	return b.String()
}

// caddyConfig: automatic HTTPS and the admin API off, the given certificate,
// round robin over the three endpoints. Caddy logs no access lines unless
// told to.
func (e *env) caddyConfig() string {
	ups := make([]string, 0, endpoints)
	for _, p := range endpointPorts() {
		ups = append(ups, fmt.Sprintf("127.0.0.1:%d", p))
	}
	proxy := fmt.Sprintf("\treverse_proxy %s {\n\t\tlb_policy round_robin\n\t}\n", strings.Join(ups, " "))
	return fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s\n}\n\nhttp://:%d {\n\tbind 127.0.0.1\n%s}\n\nhttps://:%d {\n\tbind 127.0.0.1\n\ttls %s %s\n%s}\n",
		e.path("caddy-data"), httpPort, proxy, httpsPort, e.certFile, e.keyFile, proxy)
}

// rautaManifests: a GatewayClass, a Gateway with an HTTP and an HTTPS
// listener, one HTTPRoute to a Service whose three endpoints are the three
// backend ports (one EndpointSlice each, as ports differ), and the TLS Secret.
func (e *env) rautaManifests() (string, error) {
	c, err := os.ReadFile(e.certFile)
	if err != nil {
		return "", err
	}
	k, err := os.ReadFile(e.keyFile)
	if err != nil {
		return "", err
	}
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
  name: bench
  namespace: default
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    port: %d
    protocol: HTTP
  - name: https
    port: %d
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs:
      - name: bench-cert
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bench
  namespace: default
spec:
  parentRefs:
  - name: bench
  rules:
  - backendRefs:
    - name: pool
      port: 80
---
apiVersion: v1
kind: Secret
metadata:
  name: bench-cert
  namespace: default
type: kubernetes.io/tls
data:
  tls.crt: %s
  tls.key: %s
---
apiVersion: v1
kind: Service
metadata:
  name: pool
  namespace: default
spec:
  ports:
  - name: http
    port: 80
`, httpPort, httpsPort, base64.StdEncoding.EncodeToString(c), base64.StdEncoding.EncodeToString(k))
	for i, p := range endpointPorts() {
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: pool-%d
  namespace: default
  labels:
    kubernetes.io/service-name: pool
addressType: IPv4
ports:
- name: http
  port: %d
endpoints:
- addresses: ["127.0.0.1"]
`, i+1, p)
	}
	return b.String(), nil
}
