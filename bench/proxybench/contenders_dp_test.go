package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/false-systems/rauta/bench/internal/dpfeed"
)

// TestDataplaneContender: rauta-dp and its variants run the rauta-dataplane
// binary pinned, pointed at a feed of the rauta contender's manifests, whose
// translation has every listener the other proxies serve.
func TestDataplaneContender(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	e := &env{dir: t.TempDir(), feeds: &feeds{}}
	defer e.feeds.closeAll()
	if err := e.writeCert(func(argv ...string) error { return exec.Command(argv[0], argv[1:]...).Run() }); err != nil {
		t.Fatal(err)
	}
	o := options{proxyCPU: "0", dataplaneBin: "/bin/rauta-dataplane", dataplaneArgs: []string{"-pprof"}}

	if _, err := newContender("nginx:GOGC=50", e, o); err == nil {
		t.Error("a variant of nginx accepted")
	}
	if _, err := newContender(rautaDP, e, options{proxyCPU: "0"}); err == nil || !strings.Contains(err.Error(), "-dataplane") {
		t.Errorf("rauta-dp without -dataplane: err %v", err)
	}

	c, err := newContender(rautaDP+":GOGC=50,GOMEMLIMIT=20MiB", e, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Argv[:4], []string{"taskset", "-c", "0", "/bin/rauta-dataplane"}) {
		t.Errorf("argv %q: want the data plane pinned to CPU 0", c.Argv)
	}
	for _, want := range []string{"-controller", "-controller-ca", "-token-file", "-gateway", benchGateway, "-pprof"} {
		if !slices.Contains(c.Argv, want) {
			t.Errorf("argv %q lacks %s", c.Argv, want)
		}
	}
	if !slices.Equal(c.Env, []string{"GOMAXPROCS=1", "GOGC=50", "GOMEMLIMIT=20MiB"}) {
		t.Errorf("env %q", c.Env)
	}
	if len(e.feeds.list) != 1 || c.feed == nil {
		t.Fatalf("%d feeds started, contender's %v", len(e.feeds.list), c.feed)
	}

	snap, err := dpfeed.FromManifests(strings.TrimSuffix(c.ConfigFile, "/bench.yaml"), benchGateway)
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, l := range snap.Listeners {
		ports = append(ports, fmt.Sprint(l.Port))
	}
	slices.Sort(ports)
	want := []string{fmt.Sprint(httpPort), fmt.Sprint(httpsPort), fmt.Sprint(httpsRSAPort), fmt.Sprint(grpcPort), fmt.Sprint(wsPort)}
	slices.Sort(want)
	if !slices.Equal(ports, want) {
		t.Errorf("listener ports %v, want %v", ports, want)
	}
	if !takesPart(rautaDP+":GOGC=50", groupRoutes) || takesPart("caddy:x", groupRoutes) {
		t.Error("a variant does not take part as its kind")
	}
}
