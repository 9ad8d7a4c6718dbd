package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

type netSetup struct {
	client, server string // netns names
	serverIf       string // veth end inside the server namespace
	serverAddr     string
	serverPID      int
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func setupNet() (*netSetup, error) {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "rtbn" + hex.EncodeToString(b)
	n := &netSetup{client: p + "c", server: p + "s", serverIf: p + "s0", serverAddr: "10.251.77.2:8080"}
	steps := [][]string{
		{"netns", "add", n.client},
		{"netns", "add", n.server},
		{"link", "add", p + "c0", "netns", n.client, "type", "veth", "peer", "name", n.serverIf, "netns", n.server},
		{"-n", n.client, "addr", "add", "10.251.77.1/24", "dev", p + "c0"},
		{"-n", n.server, "addr", "add", "10.251.77.2/24", "dev", n.serverIf},
		{"-n", n.client, "link", "set", p + "c0", "up"},
		{"-n", n.server, "link", "set", n.serverIf, "up"},
		{"-n", n.client, "link", "set", "lo", "up"},
		{"-n", n.server, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			n.teardown()
			return nil, err
		}
	}
	return n, nil
}

func (n *netSetup) teardown() {
	_ = exec.Command("ip", "netns", "del", n.client).Run()
	_ = exec.Command("ip", "netns", "del", n.server).Run()
}

// waitServer dials from the client namespace until the server answers.
func (n *netSetup) waitServer(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := n.dialOnce(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("server %s did not come up", n.serverAddr)
}

func (n *netSetup) dialOnce() error {
	target, err := netns.GetFromName(n.client)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	c, derr := net.DialTimeout("tcp4", n.serverAddr, time.Second)
	if err := netns.Set(orig); err != nil {
		panic("cannot return to the original network namespace: " + err.Error())
	}
	if derr != nil {
		return derr
	}
	return c.Close()
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99Re = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
	reqRe = regexp.MustCompile(`(\d+) requests in`)
)

// pacedScript makes each wrk connection wait between requests so the
// total approaches the target rate (wrk has no rate option; wrk2 does).
const pacedScript = `
local d = %d
function delay() return d end
`

// wrk runs wrk in the client namespace on CPU 0. l.delayMS > 0 makes each
// connection pause that long between requests (pacing).
func (n *netSetup) wrk(ctx context.Context, l load, d time.Duration) (runResult, error) {
	args := []string{"netns", "exec", n.client, "taskset", "-c", "0", "wrk", "-t1", fmt.Sprintf("-c%d", l.conns),
		fmt.Sprintf("-d%ds", int(d.Seconds())), "--latency"}
	if l.delayMS > 0 || l.checkPairing {
		script := ""
		if l.delayMS > 0 {
			script = fmt.Sprintf(pacedScript, l.delayMS)
		}
		if l.checkPairing {
			script = fmt.Sprintf(pairingScript, script)
		}
		f, err := os.CreateTemp("", "rauta-wrk-*.lua")
		if err != nil {
			return runResult{}, err
		}
		defer os.Remove(f.Name())
		_, _ = f.WriteString(script)
		f.Close()
		args = append(args, "-s", f.Name())
	}
	args = append(args, "http://"+n.serverAddr+"/")
	cmd := exec.CommandContext(ctx, "ip", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return runResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	// ip netns exec and taskset exec into wrk: the child's rusage is wrk's.
	wrkCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	s := string(out)
	m, p, r := rpsRe.FindStringSubmatch(s), p99Re.FindStringSubmatch(s), reqRe.FindStringSubmatch(s)
	if m == nil || p == nil || r == nil {
		return runResult{}, fmt.Errorf("cannot parse wrk output:\n%s", s)
	}
	rps, _ := strconv.ParseFloat(m[1], 64)
	v, _ := strconv.ParseFloat(p[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[2]]
	reqs, _ := strconv.ParseFloat(r[1], 64)
	if strings.Contains(s, "Non-2xx") || strings.Contains(s, "Socket errors") {
		fmt.Fprintf(os.Stderr, "wrk reported errors:\n%s", s)
	}
	return runResult{rps: rps, p99: time.Duration(v * float64(unit)), requests: reqs, wrkCPU: wrkCPU}, nil
}

// pacedDelayMS is the pause of each paced connection between requests.
// wrk takes whole milliseconds, so the rate is tuned with the number of
// connections instead (one more connection is ~0.5% more load at 20k/s).
const pacedDelayMS = 10

// calibrate finds the connection count that paces wrk near rate
// requests/s (without the observer): each connection makes one request
// per delay + latency, so the rate is conns / cycle. A step during which
// other jobs or the hypervisor took the CPU is measured again: it would
// calibrate to a slower machine and so offer more than rate afterwards.
func (n *netSetup) calibrate(ctx context.Context, o benchOptions) (load, float64, error) {
	rate := o.rate
	l := load{conns: max(1, rate*pacedDelayMS/1000), delayMS: pacedDelayMS, checkPairing: o.checkPairing}
	var achieved float64
	for step, redo := 0, 0; step < 5; step++ {
		probe := startCPUProbe(n.serverPID)
		r, err := n.wrk(ctx, l, 2*time.Second)
		if err != nil {
			return load{}, 0, err
		}
		if u := probe.finish(r.wrkCPU); redo < 10 && ((o.maxOther > 0 && u.other > o.maxOther) || (o.maxSteal > 0 && u.stolen() > o.maxSteal)) {
			redo++
			step--
			fmt.Printf("calibration step disturbed (other jobs %.0f%%, hypervisor %.0f%% of a CPU); measuring again\n", u.other, u.stolen())
			continue
		}
		achieved = r.rps
		if r.rps <= 0 {
			return load{}, 0, fmt.Errorf("calibrate: wrk -c%d made no requests", l.conns)
		}
		if math.Abs(r.rps-float64(rate)) <= 0.01*float64(rate) {
			break
		}
		cycle := float64(l.conns) / r.rps // seconds per request per connection
		next := max(1, int(math.Round(float64(rate)*cycle)))
		if next == l.conns {
			break
		}
		l.conns = next
	}
	return l, achieved, nil
}
