package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/mesh"
)

// The bench's node: pods are network namespaces joined by veths to a
// bridge whose address is the node's (where the mesh proxy listens), as a
// bridge CNI sets them up. Addresses from the ranges reserved for this
// bench: pods 10.244.230.0/24, Services 10.96.245.0/24.
const (
	bridgeName = "rmb0"
	nodeIP     = "10.244.230.1"
	podPrefix  = 24
	clusterIP  = "10.96.245.10"
	svcPort    = 80
	appPort    = 8080
	proxyPort  = 15001 // the mesh proxy on the node; the outbound sidecar in a pod
	inboundSC  = 15006 // the inbound sidecar in the server pod
	cgroupBase = "rauta-meshbench"
)

// pod is a network namespace with one veth to the bridge and a cgroup of
// its own under the bench's cgroup.
type pod struct {
	name, ns, ip, hostIf string
	cgroup               string // directory
}

// The four pods: the mesh paths and the plain one share client and server;
// the sidecar baseline has its own pair, whose namespaces carry the
// iptables rules (a sidecar mesh puts them in every pod, a sidecar-less
// one in none), so conntrack runs only where the sidecar path needs it.
func podSpecs() []struct{ name, ip string } {
	return []struct{ name, ip string }{
		{"client", "10.244.230.2"},
		{"server", "10.244.230.3"},
		{"scclient", "10.244.230.4"},
		{"scserver", "10.244.230.5"},
	}
}

// node holds what setup made, for teardown.
type node struct {
	base  string // the bench's cgroup: the agent attaches here
	agent string // the agent's cgroup, under base
	pods  map[string]*pod
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setupNode makes the bridge, the pods and the cgroups. Leftovers of an
// earlier run that was killed are removed first. On error what was made
// is torn down.
func setupNode() (_ *node, err error) {
	root, err := mesh.Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	n := &node{base: filepath.Join(root, cgroupBase), pods: map[string]*pod{}}
	n.agent = filepath.Join(n.base, "agent")
	n.teardown()
	defer func() {
		if err != nil {
			n.teardown()
		}
	}()
	for _, dir := range []string{n.base, n.agent} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
	}
	steps := [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", nodeIP, podPrefix), "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	}
	for _, s := range steps {
		if err := run("ip", s...); err != nil {
			return nil, err
		}
	}
	for _, s := range podSpecs() {
		p := &pod{name: s.name, ns: "rmb-" + s.name, ip: s.ip, hostIf: "rmb-" + s.name, cgroup: filepath.Join(n.base, s.name)}
		n.pods[s.name] = p
		if err := os.Mkdir(p.cgroup, 0o755); err != nil {
			return nil, err
		}
		steps := [][]string{
			{"netns", "add", p.ns},
			{"link", "add", p.hostIf, "type", "veth", "peer", "name", "eth0", "netns", p.ns},
			{"link", "set", p.hostIf, "master", bridgeName, "up"},
			{"-n", p.ns, "addr", "add", fmt.Sprintf("%s/%d", p.ip, podPrefix), "dev", "eth0"},
			{"-n", p.ns, "link", "set", "eth0", "up"},
			{"-n", p.ns, "link", "set", "lo", "up"},
			{"-n", p.ns, "route", "add", "default", "via", nodeIP},
		}
		for _, st := range steps {
			if err := run("ip", st...); err != nil {
				return nil, err
			}
		}
		// A client that closes first keeps its port in TIME_WAIT for 60 s,
		// and every mesh path dials the same proxy address: with a new
		// connection per request the runs of a round used up the pod's
		// ephemeral ports, and connect() then spent milliseconds of CPU
		// per call searching for a free one (measured: the client's CPU
		// per request 3.4 ms instead of 0.23). Reusing TIME_WAIT ports
		// for new connections (safe with TCP timestamps, on by default)
		// keeps the port search out of the measurement.
		if err := run("ip", "netns", "exec", p.ns, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// teardown kills every process left in the bench's cgroups and removes
// them, the pods' namespaces (their veths go with them) and the bridge.
// It is also run before setup, for what a killed run left.
func (n *node) teardown() {
	for _, s := range podSpecs() {
		_ = exec.Command("ip", "netns", "del", "rmb-"+s.name).Run()
	}
	_ = exec.Command("ip", "link", "del", bridgeName).Run()
	if _, err := os.Stat(n.base); err != nil {
		return
	}
	// Children first; cgroup.kill ends every process of a cgroup and its
	// descendants (Linux 5.14).
	_ = os.WriteFile(filepath.Join(n.base, "cgroup.kill"), []byte("1"), 0)
	entries, _ := os.ReadDir(n.base)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroup(filepath.Join(n.base, e.Name()))
		}
	}
	removeCgroup(n.base)
}

// removeCgroup removes an empty cgroup; its killed processes may take a
// moment to leave it (bounded: 10 s).
func removeCgroup(dir string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(os.Stderr, "meshbench: remove cgroup %s: %v\n", dir, err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroupCPU is the CPU time of every process that ran in dir and its
// descendants (cpu.stat usage_usec: scheduler run time, not ticks).
func cgroupCPU(dir string) (time.Duration, error) {
	f, err := os.Open(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "usage_usec" {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat: no usage_usec", dir)
}

// cpu is the CPU time of the bench's cgroup (key "") and of each cgroup in
// it: the agent and every pod.
func (n *node) cpu() (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	dirs := map[string]string{"": n.base, "agent": n.agent}
	for name, p := range n.pods {
		dirs[name] = p.cgroup
	}
	for name, dir := range dirs {
		d, err := cgroupCPU(dir)
		if err != nil {
			return nil, err
		}
		out[name] = d
	}
	return out, nil
}
