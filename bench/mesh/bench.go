package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/false-systems/rauta/bench/internal/procfs"
)

// pathSpec is how one path is measured: from which pod, to which address,
// the peer the server must see, and whether the mesh agent runs (with or
// without sockmap).
type pathSpec struct {
	clientPod string
	url       string
	peer      string
	agent     bool
	sockmap   bool
	// otherAgent: the agent is -agent-bin's, not this binary's.
	otherAgent bool
}

func pathSpecs() map[string]pathSpec {
	svc := fmt.Sprintf("http://%s:%d", clusterIP, svcPort)
	return map[string]pathSpec{
		"plain":   {clientPod: "client", url: fmt.Sprintf("http://%s:%d", podIP("server"), appPort), peer: podIP("client")},
		"sockmap": {clientPod: "client", url: svc, peer: nodeIP, agent: true, sockmap: true},
		"mesh":    {clientPod: "client", url: svc, peer: nodeIP, agent: true},
		// The same two with -agent-bin's agent, so two builds meet in one run.
		"sockmap-b": {clientPod: "client", url: svc, peer: nodeIP, agent: true, sockmap: true, otherAgent: true},
		"mesh-b":    {clientPod: "client", url: svc, peer: nodeIP, agent: true, otherAgent: true},
		"sidecar":   {clientPod: "scclient", url: svc, peer: "127.0.0.1"},
	}
}

// runResult is one run: one path, one cell.
type runResult struct {
	requests int
	elapsed  time.Duration
	p50, p99 time.Duration
	procCPU  time.Duration            // the bench's cgroups: every process on the path
	parts    map[string]time.Duration // procCPU by cgroup: agent and pods
	bpf      map[string]progStats     // the agent's programs, with an agent
	softirq  time.Duration            // the machine's softirq time (ticks), all CPUs
	sockmap  map[string]float64
}

func (r runResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is the processes' and softirq time per request, in
// microseconds.
func (r runResult) cpuPerRequest() (proc, softirq float64) {
	n := float64(r.requests)
	return float64(r.procCPU.Microseconds()) / n, float64(r.softirq.Microseconds()) / n
}

// results[round][path][cell]
type results []map[string]map[cell]runResult

func bench(ctx context.Context, c config, out io.Writer) (err error) {
	n, err := setupNode()
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	defer n.teardown()
	dir, err := os.MkdirTemp("", "rauta-meshbench-")
	if err != nil {
		return err
	}
	if !c.keepDir {
		defer os.RemoveAll(dir)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			if serr := p.stop(); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		// Interrupted (or out of time): the children ended with the
		// context, and the runs' errors are its consequence.
		if ctx.Err() != nil {
			err = fmt.Errorf("stopped: %w", context.Cause(ctx))
		}
	}()
	// The servers and the sidecars run throughout (idle while another
	// path is measured); the agent runs for the mesh paths only.
	for _, name := range []string{"server", "scserver"} {
		p := n.pods[name]
		sp, err := start(ctx, name, p.cgroup, p.ns, role("server"), self, fmt.Sprintf(":%d", appPort))
		if err != nil {
			return err
		}
		procs = append(procs, sp)
	}
	if slices.Contains(c.paths, "sidecar") {
		if err := installSidecarRules(n); err != nil {
			return err
		}
		confs, err := writeSidecarConfs(n, dir)
		if err != nil {
			return err
		}
		for _, name := range []string{"scclient", "scserver"} {
			p := n.pods[name]
			sp, err := start(ctx, "nginx in "+name, p.cgroup, p.ns, nil, "nginx", "-c", confs[name])
			if err != nil {
				return err
			}
			procs = append(procs, sp)
		}
	}
	fmt.Fprintf(out, "meshbench: %d rounds x %d paths x %d cells, %d requests per run; load %s\n",
		c.rounds, len(c.paths), len(c.cells), c.requests, loadavg())
	res := make(results, 0, c.rounds)
	for round := range c.rounds {
		order := slices.Clone(c.paths)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		byPath := map[string]map[cell]runResult{}
		for _, path := range order {
			r, err := runPath(ctx, c, n, self, path, round+1)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, path, err)
			}
			byPath[path] = r
			for _, cl := range c.cells {
				printRun(out, round+1, path, cl, r[cl])
			}
		}
		res = append(res, byPath)
		fmt.Fprintf(out, "round %d done, load %s\n", round+1, loadavg())
	}
	report(out, c, res)
	return nil
}

// runPath runs every cell on one path: it starts the agent if the path
// needs it, then one client per cell.
func runPath(ctx context.Context, c config, n *node, self, path string, round int) (_ map[cell]runResult, err error) {
	spec := pathSpecs()[path]
	var admin string
	agentPID := 0
	if spec.agent {
		if admin, err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
		env := role("agent")
		if c.agentProcs > 0 {
			env = append(env, fmt.Sprintf("GOMAXPROCS=%d", c.agentProcs))
		}
		if c.profileDir != "" {
			env = append(env, fmt.Sprintf("%s=%s/%s-%d.pprof", profileEnv, c.profileDir, path, round))
		}
		exe := self
		if spec.otherAgent {
			exe = c.agentBin
		}
		ag, err := start(ctx, "agent", n.agent, "", env, exe, n.base, admin, strconv.FormatBool(spec.sockmap))
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, ag.stop()) }()
		if err := waitReady(ctx, ag, admin); err != nil {
			return nil, err
		}
		agentPID = ag.cmd.Process.Pid
	}
	out := map[cell]runResult{}
	for _, cl := range c.cells {
		before := sockmapCounters(admin)
		r, err := runCell(ctx, c, n, self, spec, cl, agentPID)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", cl, err)
		}
		if admin != "" {
			after := sockmapCounters(admin)
			r.sockmap = map[string]float64{}
			for k, v := range after {
				r.sockmap[k] = v - before[k]
			}
		}
		out[cl] = r
	}
	return out, nil
}

// runCell runs one client: warm-up until the path answers with the
// expected peer, then the timed requests, with the CPU counters read
// just before and after them.
func runCell(ctx context.Context, c config, n *node, self string, spec pathSpec, cl cell, agentPID int) (_ runResult, err error) {
	p := n.pods[spec.clientPod]
	cmd, cg, err := command(ctx, p.cgroup, p.ns, role("client"), self,
		"-url", spec.url, "-size", strconv.Itoa(cl.size), "-new-conn="+strconv.FormatBool(cl.newConn),
		"-warmup", strconv.Itoa(c.warmup), "-requests", strconv.Itoa(c.requests), "-timeout", c.runTimeout.String(),
		"-peer", spec.peer)
	if err != nil {
		return runResult{}, err
	}
	defer cg.Close()
	stderr := &tail{max: 16 << 10}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return runResult{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return runResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return runResult{}, err
	}
	fail := func(err error) (runResult, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return runResult{}, fmt.Errorf("%w; client: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := bufio.NewReader(stdout)
	if _, err := lines.ReadString('\n'); err != nil {
		return fail(fmt.Errorf("client not ready: %w", err))
	}
	var bpf0 map[string]progStats
	if agentPID != 0 {
		stats, err := enableBPFStats()
		if err != nil {
			return fail(err)
		}
		defer func() { err = errors.Join(err, stats.Close()) }()
		if bpf0, err = agentPrograms(agentPID); err != nil {
			return fail(err)
		}
	}
	cpu0, err := n.cpu()
	if err != nil {
		return fail(err)
	}
	soft0, err := softirqTime()
	if err != nil {
		return fail(err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return fail(err)
	}
	line, err := lines.ReadString('\n')
	if err != nil {
		return fail(fmt.Errorf("client result: %w", err))
	}
	cpu1, err1 := n.cpu()
	soft1, err2 := softirqTime()
	if err := errors.Join(err1, err2); err != nil {
		return fail(err)
	}
	var bpf map[string]progStats
	if agentPID != 0 {
		bpf1, err := agentPrograms(agentPID)
		if err != nil {
			return fail(err)
		}
		bpf = progDelta(bpf0, bpf1)
	}
	var cr clientResult
	if err := json.Unmarshal([]byte(line), &cr); err != nil {
		return fail(fmt.Errorf("client result %q: %w", line, err))
	}
	if err := cmd.Wait(); err != nil {
		return runResult{}, fmt.Errorf("client: %w: %s", err, stderr)
	}
	if cr.Err != "" {
		return runResult{}, fmt.Errorf("client after %d requests: %s", cr.Requests, cr.Err)
	}
	parts := map[string]time.Duration{}
	for k, v := range cpu1 {
		if k != "" {
			parts[k] = v - cpu0[k]
		}
	}
	return runResult{requests: cr.Requests, elapsed: cr.Elapsed, p50: cr.P50, p99: cr.P99,
		procCPU: cpu1[""] - cpu0[""], parts: parts, softirq: soft1 - soft0, bpf: bpf}, nil
}

// softirqTime is the softirq time of all CPUs (the "cpu" line of
// /proc/stat). Ticks: 10 ms steps, sampled.
func softirqTime() (time.Duration, error) {
	cpus, err := procfs.ReadCPUTimes()
	if err != nil {
		return 0, err
	}
	for _, c := range cpus {
		if c.Name == "cpu" {
			return time.Duration(c.SoftIRQ) * time.Second / procfs.ClockTicks, nil
		}
	}
	return 0, errors.New("/proc/stat: no cpu line")
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady waits for the agent's /readyz (maps written), at most 30 s.
func waitReady(ctx context.Context, ag *proc, admin string) error {
	deadline := time.Now().Add(30 * time.Second)
	cl := &http.Client{Timeout: time.Second}
	for {
		if err := ag.exited(); err != nil {
			return err
		}
		resp, err := cl.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent's /readyz not 200 within 30s (last error: %v)", err) //nolint:errorlint // err may be nil: a status, not an error
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sockmapCounters reads rauta_mesh_sockmap_total by result from the
// agent's /metrics (nil without an agent).
func sockmapCounters(admin string) map[string]float64 {
	if admin == "" {
		return nil
	}
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	line := regexp.MustCompile(`^rauta_mesh_sockmap_total\{result="([a-z_]+)"\} ([0-9.e+]+)$`)
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = v
		}
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
