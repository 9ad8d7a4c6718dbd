package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/translate"
)

// modelRoute is the route the nginx and HAProxy configs send a request to:
// an own hostname is its route; on the shared host the first path segment
// names a PathPrefix route, and failing that the anchored regexes decide.
// "" is no route (404).
func modelRoute(routes []benchRoute, host, path string) string {
	if host != routegen.SharedHost {
		for _, r := range routes {
			if r.Host == host {
				return r.id()
			}
		}
		return ""
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	for _, r := range routes {
		if r.Prefix == "/"+seg {
			return r.id()
		}
	}
	for _, r := range routes {
		if r.Regex != "" && regexp.MustCompile("^(?:"+r.Regex+")$").MatchString(path) {
			return r.id()
		}
	}
	return ""
}

// TestRoutesMatchRAUTA loads the manifests RAUTA is given, compiles them as
// rauta run does, and checks that RAUTA's router and the nginx/HAProxy
// model pick the same route for every generated request and for near
// misses (a longer first segment, a regex that does not match, an unknown
// host): if the generators drifted from RAUTA, the three proxies would be
// measured doing different work.
func TestRoutesMatchRAUTA(t *testing.T) {
	const n = 1000
	res := routegen.Resources(n)
	routes, err := benchRoutes(res)
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := routesRautaManifests(res)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, _, err := file.Load(dir)
	if err != nil {
		t.Fatalf("rauta's file provider rejects the manifests: %v", err)
	}
	if len(loaded.HTTPRoutes) != n || len(loaded.EndpointSlices) != n {
		t.Fatalf("loaded %d HTTPRoutes and %d EndpointSlices, want %d each", len(loaded.HTTPRoutes), len(loaded.EndpointSlices), n)
	}
	out := translate.Translate(loaded, translate.Options{})
	if len(out.IR.Listeners) != 1 || out.IR.Listeners[0].Port != httpPort {
		t.Fatalf("want one listener on port %d, got %+v", httpPort, out.IR.Listeners)
	}
	tbl, err := router.Compile(&out.IR.Listeners[0], lb.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rautaRoute := func(host, path string, h map[string][]string) string {
		rt := tbl.Match(&router.Request{Host: host, Path: path, Method: "GET", Header: router.HTTPHeader(h), ClientIP: "192.0.2.10"})
		if rt == nil {
			return ""
		}
		for _, r := range routes {
			if strings.Contains(rt.Name, "/"+r.id()+"/") {
				return r.id()
			}
		}
		return "unknown route " + rt.Name
	}
	checked := 0
	for _, q := range routegen.Requests(n, 2*n) {
		probes := []struct{ host, path string }{{q.Host, q.Path}}
		if q.Host == routegen.SharedHost {
			seg, rest, _ := strings.Cut(strings.TrimPrefix(q.Path, "/"), "/")
			probes = append(probes, struct{ host, path string }{q.Host, "/" + seg + "x/" + rest}, // not a segment prefix
				struct{ host, path string }{q.Host, "/" + seg},                                    // the prefix itself
				struct{ host, path string }{q.Host, strings.Replace(q.Path, "12345", "12a45", 1)}) // regex miss
		} else {
			probes = append(probes, struct{ host, path string }{"x" + q.Host, q.Path})
		}
		for _, p := range probes {
			want, got := modelRoute(routes, p.host, p.path), rautaRoute(p.host, p.path, q.Header)
			if got != want {
				t.Fatalf("%s%s: RAUTA picks %q, the nginx/HAProxy configs %q", p.host, p.path, got, want)
			}
			checked++
		}
		if q.Route != modelRoute(routes, q.Host, q.Path) {
			t.Fatalf("%s%s: routegen says %s", q.Host, q.Path, q.Route)
		}
	}
	t.Logf("%d requests routed alike", checked)
}

// TestBenchRoutesRefusesUnknownShapes: a route the generators cannot write
// must be an error, not a silently different config.
func TestBenchRoutesRefusesUnknownShapes(t *testing.T) {
	res := routegen.Resources(8)
	res.HTTPRoutes[1].Spec.Hostnames = append(res.HTTPRoutes[1].Spec.Hostnames, "second.example.com")
	if _, err := benchRoutes(res); err == nil {
		t.Error("benchRoutes accepted a route with two hostnames")
	}
	res = routegen.Resources(8)
	v := "/a/b"
	res.HTTPRoutes[0].Spec.Rules[0].Matches[0].Path.Value = &v // a two-segment prefix on the shared host
	if _, err := benchRoutes(res); err == nil {
		t.Error("benchRoutes accepted a prefix of two segments, which HAProxy's segment map cannot route")
	}
}

// TestRoutesConfigsValid has nginx and HAProxy check the configs of the
// full routes cell (skipped where they are not installed).
func TestRoutesConfigsValid(t *testing.T) {
	routes, err := benchRoutes(routegen.Resources(routeCount))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: t.TempDir()}
	t.Run("nginx", func(t *testing.T) {
		conf, err := e.write("routes-nginx.conf", e.routesNginxConfig(routes))
		if err != nil {
			t.Fatal(err)
		}
		nginxCheck(t, e, conf)
	})
	t.Run("haproxy", func(t *testing.T) {
		cfg, maps := e.routesHAProxyConfig(routes)
		if err := writeMaps(e.path("haproxy-routes"), maps); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(maps["hosts.map"], "\n") + strings.Count(maps["prefixes.map"], "\n"); n != routeCount {
			t.Errorf("maps route %d hostnames and prefixes, want %d", n, routeCount)
		}
		conf, err := e.write("routes-haproxy.cfg", cfg)
		if err != nil {
			t.Fatal(err)
		}
		haproxyCheck(t, conf)
	})
}

// TestMainConfigsValid checks the usual and the idle-cell configs of every
// proxy, with the RSA, gRPC and WebSocket listeners.
func TestMainConfigsValid(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	e := &env{dir: t.TempDir(), fdLimit: 20000}
	run := func(argv ...string) error {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := e.writeCert(run); err != nil {
		t.Fatal(err)
	}
	for _, idle := range []bool{false, true} {
		e.idle = idle
		t.Run(fmt.Sprintf("idle=%v", idle), func(t *testing.T) {
			conf, err := e.write("nginx.conf", e.nginxConfig())
			if err != nil {
				t.Fatal(err)
			}
			nginxCheck(t, e, conf)
			conf, err = e.write("backend.conf", e.backendConfig())
			if err != nil {
				t.Fatal(err)
			}
			nginxCheck(t, e, conf)
			if idle && !strings.Contains(e.nginxConfig(), fmt.Sprintf("worker_connections %d;", 20000-fdHeadroom/2)) {
				t.Error("the idle nginx config does not size worker_connections to the file limit")
			}
			conf, err = e.write("haproxy.cfg", e.haproxyConfig())
			if err != nil {
				t.Fatal(err)
			}
			haproxyCheck(t, conf)
			conf, err = e.write("Caddyfile", e.caddyConfig())
			if err != nil {
				t.Fatal(err)
			}
			caddyCheck(t, e, conf)
		})
	}
}

func nginxCheck(t *testing.T, e *env, conf string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx not installed")
		}
	}
	if out, err := exec.Command(bin, "-t", "-q", "-p", e.dir, "-c", conf, "-e", e.path("nginx-t.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v: %s", err, tail(out, 600))
	}
}

func haproxyCheck(t *testing.T, conf string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/haproxy"); err != nil {
			t.Skip("haproxy not installed")
		}
	}
	if out, err := exec.Command(bin, "-c", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v: %s", err, tail(out, 600))
	}
}

func caddyCheck(t *testing.T, e *env, conf string) {
	t.Helper()
	bin, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy not installed")
	}
	cmd := exec.Command(bin, "validate", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+e.dir, "XDG_DATA_HOME="+e.path("caddy-data"), "XDG_CONFIG_HOME="+e.path("caddy-config"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v: %s", err, tail(out, 600))
	}
}
