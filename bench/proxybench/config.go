package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/false-systems/rauta/bench/internal/manifests"
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
	// The cells of issue 18: HTTPS with an RSA-2048 certificate, gRPC over
	// h2c and WebSocket on every proxy, and the Go backends behind them.
	httpsRSAPort = 18444
	grpcPort     = 18050
	wsPort       = 18060
	goGRPCPort   = 18095
	goWSPort     = 18096
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
	// rsaCert, rsaKey and rsaPem are the same for an RSA-2048 key.
	rsaCert, rsaKey, rsaPem string
	bodies                  map[string][]byte
	// idle raises the connection limits of the proxies' configs for the
	// idle-connections cell (config.go keeps the usual ones otherwise, so
	// nginx does not preallocate 100,000 connection slots in every cell).
	idle bool
	// fdLimit is RLIMIT_NOFILE as raised for the idle cell; the idle
	// configs allow that many connections, less fdHeadroom/2.
	fdLimit int
	// tag prefixes the names of the config files written for one variant
	// ("idle-"), so the main configs stay as they were.
	tag   string // feeds holds the config streams of rauta-dp, shared by the variants.
	feeds *feeds
}

// idleMaxConns is the most connections the idle cell asks the proxies to
// allow: above the 50,000 it holds, plus backend connections.
const idleMaxConns = 120000

// idleConnLimit is the connection limit of every proxy in the idle cell
// (nginx worker_connections, HAProxy maxconn): as many as the file limit
// allows, so the configs never stop the proxies before the kernel does.
func (e *env) idleConnLimit() int {
	if e.fdLimit <= 0 {
		return idleMaxConns
	}
	return max(1024, min(idleMaxConns, e.fdLimit-fdHeadroom/2))
}

// writeCert makes a self-signed ECDSA P-256 certificate for 127.0.0.1 with
// openssl, as the harness's users would, and an RSA-2048 one for the
// handshake cells.
func (e *env) writeCert(run func(argv ...string) error) error {
	e.certFile, e.keyFile, e.pemFile = e.path("cert.pem"), e.path("key.pem"), e.path("haproxy.pem")
	if err := writeCertPair(run, []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"}, e.certFile, e.keyFile, e.pemFile); err != nil {
		return err
	}
	e.rsaCert, e.rsaKey, e.rsaPem = e.path("rsa-cert.pem"), e.path("rsa-key.pem"), e.path("haproxy-rsa.pem")
	return writeCertPair(run, []string{"-newkey", "rsa:2048"}, e.rsaCert, e.rsaKey, e.rsaPem)
}

// writeCertPair writes certificate, key and both in one file (HAProxy).
func writeCertPair(run func(argv ...string) error, keyArgs []string, certFile, keyFile, pemFile string) error {
	argv := append([]string{"openssl", "req", "-x509"}, keyArgs...)
	argv = append(argv, "-nodes", "-days", "2", "-subj", "/CN=rauta-bench",
		"-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", keyFile, "-out", certFile)
	if err := run(argv...); err != nil {
		return fmt.Errorf("generate certificate: %w", err)
	}
	c, err1 := os.ReadFile(certFile)
	k, err2 := os.ReadFile(keyFile)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("read certificate: %w", errors.Join(err1, err2))
	}
	return os.WriteFile(pemFile, append(append([]byte{}, c...), k...), 0o600)
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
	conns := 8192
	if e.idle && name != "backend" {
		conns = e.idleConnLimit()
	}
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile %[4]d;
pid %[1]s/%[2]s.pid;
error_log %[1]s/%[2]s-error.log warn;
events { worker_connections %[3]d; }
`, e.dir, name, conns, conns+fdHeadroom/2) + fmt.Sprintf(`http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  ssl_protocols TLSv1.2 TLSv1.3;
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
		// Any other path answers with /1k: the routes cell's requests,
		// rewritten or not, all get the same 1 KiB body.
		fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d reuseport backlog=4096;\n    root %s;\n    add_header X-Backend %d;\n    location / { try_files $uri /1k; }\n%s  }\n", p, e.path("www"), i+1, backendUploadLocations())
	}
	fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d ssl http2 backlog=4096;\n    ssl_certificate %s;\n    ssl_certificate_key %s;\n    http2_max_concurrent_streams 256;\n    root %s;\n    add_header X-Backend 1;\n  }\n",
		directH2Port, e.certFile, e.keyFile, e.path("www"))
	b.WriteString("}\n")
	return b.String()
}

// nginxConfig: one upstream of the three endpoints with a keep-alive pool,
// HTTP/1.1 upstream, buffers large enough that a 64 KiB answer never spills
// to a temp file. Request bodies keep nginx's default buffering (the whole
// body is read before the upstream gets it), in a buffer large enough that
// the upload cell's 100 KB body is not written to a temp file either.
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
      client_max_body_size 1m;
      client_body_buffer_size 128k;
    }
  }
`, httpPort, httpsPort, e.certFile, e.keyFile)
	b.WriteString(e.nginxExtraServers())
	b.WriteString("}\n")
	return b.String()
}

// nginxExtraServers are the listeners of the issue 18 cells: HTTPS with the
// RSA certificate, gRPC over h2c (grpc_pass with a keep-alive upstream, or
// nginx would open a backend connection per call) and WebSocket.
func (e *env) nginxExtraServers() string {
	return fmt.Sprintf(`  server {
    listen 127.0.0.1:%d ssl http2 backlog=4096;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / {
      proxy_pass http://pool;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffers 16 8k;
    }
  }
  upstream grpcpool {
    server 127.0.0.1:%d;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:%d http2 backlog=4096;
    http2_max_concurrent_streams 256;
    location / {
      grpc_pass grpc://grpcpool;
    }
  }
  server {
    listen 127.0.0.1:%d backlog=4096;
    location / {
      proxy_pass http://127.0.0.1:%d;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 120s;
    }
  }
`, httpsRSAPort, e.rsaCert, e.rsaKey, goGRPCPort, grpcPort, wsPort, goWSPort)
}

// haproxyConfig: one thread, keep-alive on both sides with connection reuse,
// round robin over the three endpoints, no logging.
func (e *env) haproxyConfig() string {
	maxconn, ulimit := 4096, ""
	if e.idle {
		maxconn = e.idleConnLimit()
		// HAProxy sizes its descriptor limit at two per connection (client
		// and server side); where the hard limit is lower it would refuse
		// to start, though idle client connections need only one each.
		ulimit = "  no strict-limits\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
  nbthread 1
%s  maxconn %d
  pidfile %s/haproxy.pid
defaults
  mode http
  maxconn %d
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:%d
  bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
  bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
  default_backend pool
frontend grpc
  bind 127.0.0.1:%d proto h2
  default_backend grpc
frontend ws
  bind 127.0.0.1:%d
  default_backend ws
backend grpc
  server g1 127.0.0.1:%d proto h2
backend ws
  timeout tunnel 120s
  server w1 127.0.0.1:%d
backend pool
  balance roundrobin
`, ulimit, maxconn, e.dir, maxconn, httpPort, httpsPort, e.pemFile, httpsRSAPort, e.rsaPem, grpcPort, wsPort, goGRPCPort, goWSPort)
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
	return fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s\n\tservers 127.0.0.1:%d {\n\t\tprotocols h1 h2c\n\t}\n}\n\nhttp://:%d {\n\tbind 127.0.0.1\n%s}\n\nhttps://:%d {\n\tbind 127.0.0.1\n\ttls %s %s\n%s}\n",
		e.path("caddy-data"), grpcPort, httpPort, proxy, httpsPort, e.certFile, e.keyFile, proxy) +
		fmt.Sprintf("\nhttps://:%d {\n\tbind 127.0.0.1\n\ttls %s %s\n%s}\n", httpsRSAPort, e.rsaCert, e.rsaKey, proxy) +
		fmt.Sprintf("\nhttp://:%d {\n\tbind 127.0.0.1\n\treverse_proxy h2c://127.0.0.1:%d\n}\n", grpcPort, goGRPCPort) +
		fmt.Sprintf("\nhttp://:%d {\n\tbind 127.0.0.1\n\treverse_proxy 127.0.0.1:%d\n}\n", wsPort, goWSPort)
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
%s---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bench
  namespace: default
spec:
  parentRefs:
  - name: bench
    sectionName: http
  - name: bench
    sectionName: https
  - name: bench
    sectionName: https-rsa
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
`, httpPort, httpsPort, rautaExtraListeners(), base64.StdEncoding.EncodeToString(c), base64.StdEncoding.EncodeToString(k))
	b.WriteString(manifests.LoopbackService("pool", endpointPorts()...))
	extra, err := e.rautaExtraManifests()
	if err != nil {
		return "", err
	}
	b.WriteString(extra)
	return b.String(), nil
}
