package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/false-systems/rauta/bench/internal/dpfeed"
	"github.com/false-systems/rauta/internal/configstream"
)

// rautaDP is the data plane as deployed per Gateway: the rauta-dataplane
// binary (no Kubernetes client, no controller), fed the translation of the
// same manifests the rauta contender reads, over a config stream this
// process serves (package dpfeed). The stream's CPU and memory are this
// process's, not the contender's process group's.
const rautaDP = "rauta-dp"

// contenderKind splits a contender's name into its kind and its variant:
// "rauta-dp:GOGC=50,GOMEMLIMIT=20MiB" is rauta-dp with those variables in
// its environment, measured in the same run as plain rauta-dp so runtime
// settings are compared pairwise.
func contenderKind(name string) (kind, variant string) {
	kind, variant, _ = strings.Cut(name, ":")
	return kind, variant
}

// variantEnv is the environment a variant adds.
func variantEnv(variant string) []string {
	var out []string
	for _, kv := range strings.Split(variant, ",") {
		if kv != "" {
			out = append(out, kv)
		}
	}
	return out
}

// pathSafe is name as a file name.
func pathSafe(name string) string {
	return strings.NewReplacer(":", "-", "=", "-", ",", "-", "/", "-").Replace(name)
}

// benchGateway is the Gateway of rautaManifests.
const benchGateway = "default/bench"

// feeds are the config streams of every rauta-dp variant (main, idle,
// routes), closed when the run ends.
type feeds struct{ list []*dpfeed.Feed }

func (f *feeds) closeAll() {
	for _, fd := range f.list {
		_ = fd.Close()
	}
	f.list = nil
}

// feedDataplane translates the manifests in c's config dir for gateway,
// serves them on a new config stream and points c's command line at it.
// A feed c had before is closed.
func (e *env) feedDataplane(c *contender, gateway string, o options) error {
	if o.dataplaneBin == "" {
		return fmt.Errorf("contender %s: -dataplane (path of the rauta-dataplane binary) is required", rautaDP)
	}
	snap, err := dpfeed.FromManifests(filepath.Dir(c.ConfigFile), gateway)
	if err != nil {
		return err
	}
	if c.feed != nil {
		_ = c.feed.Close()
	}
	if c.feed, err = dpfeed.Start(e.dir, gateway); err != nil {
		return err
	}
	e.feeds.list = append(e.feeds.list, c.feed)
	c.feed.Publish(configstream.NewConfig(gateway, 1, snap))
	c.Argv = append([]string{"taskset", "-c", o.proxyCPU, o.dataplaneBin}, c.feed.Args("bench")...)
	c.Argv = append(c.Argv, "-address", "127.0.0.1", "-admin-addr", fmt.Sprintf("127.0.0.1:%d", rautaAdminPort),
		"-metrics-addr=", "-access-log=false", "-log-level", "warn")
	c.Argv = append(c.Argv, o.dataplaneArgs...)
	return nil
}
