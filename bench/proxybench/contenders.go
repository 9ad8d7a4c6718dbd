package main

import (
	"fmt"
	"strconv"

	"github.com/false-systems/rauta/bench/internal/dpfeed"
)

// contender is one way of getting from the load generator to the backend.
type contender struct {
	Name string `json:"name"`
	// H1URL and H2URL are the bases wrk and h2load use ("/1k" is appended).
	H1URL string `json:"h1_url"`
	H2URL string `json:"h2_url"`
	// Argv starts the contender pinned to the proxy CPU; empty for direct.
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	// ConfigFile and Config are what the contender reads.
	ConfigFile string `json:"config_file,omitempty"`
	Config     string `json:"config,omitempty"`
	// Balanced is true when requests must reach all three endpoints.
	Balanced bool `json:"balanced"`
	// Addresses of the issue 18 cells: HTTPS with the ECDSA and the RSA
	// certificate, gRPC over h2c, WebSocket.
	TLSAddr    string `json:"tls_addr,omitempty"`
	TLSRSAAddr string `json:"tls_rsa_addr,omitempty"`
	GRPCAddr   string `json:"grpc_addr"`
	WSAddr     string `json:"ws_addr"`
	// feed serves rauta-dp its configuration (contenders_dp.go).
	feed *dpfeed.Feed
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

var allContenders = []string{"direct", "rauta", rautaDP, "nginx", "haproxy", "caddy"}

// rautaB is a second rauta binary (-rauta-b) run exactly as the rauta
// contender: two builds compared side by side in one run, each a full
// rauta. Comparing a new rauta with an old rauta-dp compares two binaries
// that differ in more than the change (docs/performance.md, round 28).
const rautaB = "rauta-b"

// newContender writes the contender's configuration into e.dir and returns
// how to run it. Every proxy gets one worker (process or thread) and, for
// the Go ones, GOMAXPROCS=1.
func newContender(name string, e *env, o options) (*contender, error) {
	cpu, rautaBin := o.proxyCPU, o.rautaBin
	kind, variant := contenderKind(name)
	if variant != "" && kind != rautaDP {
		return nil, fmt.Errorf("contender %q: only %s takes a variant (%s:NAME=VALUE,...)", name, rautaDP, rautaDP)
	}
	proxyH1 := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	proxyH2 := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	pin := []string{"taskset", "-c", cpu}
	c := &contender{Name: name, H1URL: proxyH1, H2URL: proxyH2, Balanced: true,
		TLSAddr: loopback(httpsPort), TLSRSAAddr: loopback(httpsRSAPort), GRPCAddr: loopback(grpcPort), WSAddr: loopback(wsPort)}
	var err error
	switch kind {
	case "direct":
		c.H1URL = "http://127.0.0.1:" + strconv.Itoa(backendBasePort)
		c.H2URL = "https://127.0.0.1:" + strconv.Itoa(directH2Port)
		c.Balanced = false
		c.TLSAddr, c.TLSRSAAddr, c.GRPCAddr, c.WSAddr = "", "", loopback(goGRPCPort), loopback(goWSPort)
		return c, nil
	case "rauta", rautaB:
		flagName := "-rauta"
		if kind == rautaB {
			flagName, rautaBin = "-rauta-b", o.rautaBBin
		}
		if rautaBin == "" {
			return nil, fmt.Errorf("contender %s: %s (path of the rauta binary) is required", name, flagName)
		}
		dir := e.path(e.tag + name)
		c.ConfigFile = dir + "/bench.yaml"
		if c.Config, err = e.rautaManifests(); err == nil {
			err = mkdirWrite(dir, c.ConfigFile, c.Config)
		}
		c.Argv = append(pin, rautaBin, "run", "-f", dir, "-address", "127.0.0.1",
			"-admin-addr", fmt.Sprintf("127.0.0.1:%d", rautaAdminPort), "-metrics-addr=", "-access-log=false", "-log-level", "warn")
		c.Env = []string{"GOMAXPROCS=1"}
	case rautaDP:
		dir := e.path(e.tag + pathSafe(name))
		c.ConfigFile = dir + "/bench.yaml"
		if c.Config, err = e.rautaManifests(); err == nil {
			err = mkdirWrite(dir, c.ConfigFile, c.Config)
		}
		if err == nil {
			err = e.feedDataplane(c, benchGateway, o)
		}
		c.Env = append([]string{"GOMAXPROCS=1"}, variantEnv(variant)...)
	case "nginx":
		c.Config = e.nginxConfig()
		c.ConfigFile, err = e.write(e.tag+"nginx.conf", c.Config)
		c.Argv = append(pin, "nginx", "-p", e.dir, "-c", c.ConfigFile, "-e", e.path("nginx-error.log"))
	case "haproxy":
		c.Config = e.haproxyConfig()
		c.ConfigFile, err = e.write(e.tag+"haproxy.cfg", c.Config)
		c.Argv = append(pin, "haproxy", "-db", "-f", c.ConfigFile)
	case "caddy":
		c.Config = e.caddyConfig()
		c.ConfigFile, err = e.write(e.tag+"Caddyfile", c.Config)
		c.Argv = append(pin, "caddy", "run", "--config", c.ConfigFile, "--adapter", "caddyfile")
		// Caddy writes state under HOME/XDG dirs: keep it in the temp dir.
		c.Env = []string{"GOMAXPROCS=1", "HOME=" + e.dir, "XDG_DATA_HOME=" + e.path("caddy-data"), "XDG_CONFIG_HOME=" + e.path("caddy-config")}
	default:
		return nil, fmt.Errorf("unknown contender %q (known: %v)", name, allContenders)
	}
	if err != nil {
		return nil, fmt.Errorf("contender %s: write config: %w", name, err)
	}
	return c, nil
}
