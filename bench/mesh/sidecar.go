package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// The sidecar baseline, as Istio's sidecar mode builds it: the client
// pod's outbound connections to the Service are captured by an iptables
// REDIRECT (nat OUTPUT) into a proxy in the pod, which connects to the
// Service's endpoint, the server pod; there the inbound connection is
// captured (nat PREROUTING) into the server pod's proxy, which connects to
// the application on 127.0.0.1. The proxies are nginx (one worker each),
// configured as a sidecar is: the outbound one knows the Service's
// endpoints (Envoy from EDS; here the one endpoint, written in), both pool
// their upstream connections, neither buffers to disk.

// sidecarRules are the iptables rules of the sidecar pods.
func sidecarRules(n *node) map[string][][]string {
	return map[string][][]string{
		n.pods["scclient"].ns: {{"-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", clusterIP, "--dport", fmt.Sprint(svcPort),
			"-j", "REDIRECT", "--to-ports", fmt.Sprint(proxyPort)}},
		n.pods["scserver"].ns: {{"-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", fmt.Sprint(appPort),
			"-j", "REDIRECT", "--to-ports", fmt.Sprint(inboundSC)}},
	}
}

func installSidecarRules(n *node) error {
	for ns, rules := range sidecarRules(n) {
		for _, r := range rules {
			if err := run("ip", append([]string{"netns", "exec", ns, "iptables"}, r...)...); err != nil {
				return fmt.Errorf("sidecar capture (install iptables: hack/deps.sh bench): %w", err)
			}
		}
	}
	return nil
}

// nginxConf is a sidecar's configuration: listen on port, forward to
// upstream over pooled HTTP/1.1 connections. dir holds its pid and temp
// files.
func nginxConf(dir string, port int, upstream string) string {
	return fmt.Sprintf(`worker_processes 1;
daemon off;
master_process on;
user root;
pid %[1]s/nginx.pid;
error_log stderr error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 1000000;
  upstream app {
    server %[3]s;
    keepalive 16;
    keepalive_requests 1000000;
  }
  server {
    listen %[2]d reuseport;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k;
      proxy_buffers 8 16k;
      proxy_max_temp_file_size 0;
    }
  }
}
`, dir, port, upstream)
}

// writeSidecarConfs writes the two sidecars' configurations under dir and
// returns their paths by pod.
func writeSidecarConfs(n *node, dir string) (map[string]string, error) {
	confs := map[string]string{
		"scclient": nginxConf(filepath.Join(dir, "scclient"), proxyPort, fmt.Sprintf("%s:%d", n.pods["scserver"].ip, appPort)),
		"scserver": nginxConf(filepath.Join(dir, "scserver"), inboundSC, fmt.Sprintf("127.0.0.1:%d", appPort)),
	}
	out := map[string]string{}
	for name, c := range confs {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		p := filepath.Join(d, "nginx.conf")
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}
