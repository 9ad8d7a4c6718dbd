// Command proxybench measures the HTTP data plane of RAUTA side by side with
// nginx, HAProxy, Caddy and a direct connection to the backend, in one run.
//
//	go build -o /tmp/rauta ./cmd/rauta
//	go run ./bench/proxybench -rauta /tmp/rauta -out results.json
//
// Method (docs/performance.md): an nginx backend serves static 1 KiB and
// 64 KiB files and takes 100 KB uploads on three loopback ports, the "3
// endpoints" of one Service.
// Each contender in turn proxies to that pool with one worker pinned to CPU
// 0; the backend, wrk and h2load share CPU 1. Every contender is checked for
// correct answers (status, body, all endpoints used) before it is measured,
// and every run is checked for errors and short bodies before its numbers
// count. Contenders take turns within each repeat, so drift on a shared
// machine hits all of them. bench/run.sh installs the tools and runs this.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/false-systems/rauta/bench/internal/procgroup"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "client":
			os.Exit(runClient(os.Args[2:]))
		case "backend":
			os.Exit(runBackend(os.Args[2:]))
		}
	}
	os.Exit(run())
}

type options struct {
	out      string
	rautaBin string
	// rautaBBin is the rauta binary of the rauta-b contender.
	rautaBBin string
	// dataplaneBin is the rauta-dataplane binary of the rauta-dp contender,
	// and dataplaneArgs flags added to its command line.
	dataplaneBin  string
	dataplaneArgs []string
	contenders    []string
	repeats       int
	// headline is how many more repeats run only headlineCell, the cell
	// the lead is judged on, so its medians and paired ratios rest on more
	// runs than the rest of the table.
	headline int
	duration time.Duration
	warmup   time.Duration
	quick    bool
	// headlineOnly runs headlineCell alone of the HTTP cells.
	headlineOnly bool
	proxyCPU     string
	loadCPU      string
	keepDir      bool
	// compare lists earlier -out files to pool instead of measuring.
	compare []string
	// rautaEnv is added to rauta's environment (GOGC=400 GODEBUG=...), to
	// measure runtime settings without rebuilding.
	rautaEnv []string
	// groups are the cell groups to run (groups.go).
	groups []string
}

func parseFlags() (options, error) {
	var o options
	var list string
	flag.StringVar(&o.out, "out", "", "write the results as JSON to this file (required)")
	flag.StringVar(&o.rautaBin, "rauta", "", "path of the rauta binary")
	flag.StringVar(&o.rautaBBin, "rauta-b", "", "path of a second rauta binary, the "+rautaB+" contender (an A/B of two builds in one run)")
	flag.StringVar(&o.dataplaneBin, "dataplane", "", "path of the rauta-dataplane binary (contender "+rautaDP+")")
	var dpArgs string
	flag.StringVar(&dpArgs, "dataplane-args", "", "space-separated flags added to rauta-dataplane's command line (-memory-limit=...)")
	flag.StringVar(&list, "contenders", strings.Join(allContenders, ","), "comma-separated contenders to run")
	flag.IntVar(&o.repeats, "repeats", 3, "measurements of every cell per contender")
	flag.IntVar(&o.headline, "headline-repeats", 6, "extra measurements of the headline cell ("+headlineCell.name()+") per contender")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of every wrk and h2load run (whole seconds)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up load after each contender starts")
	flag.BoolVar(&o.quick, "quick", false, "smoke test: 1 repeat (unless -repeats is given), 2 s runs, 4 HTTP cells, the short cells of the other groups")
	flag.BoolVar(&o.headlineOnly, "headline-only", false, "of the HTTP cells run only "+headlineCell.name()+" (with -quick: 2 s runs), warmed up with HTTP/1.1 only")
	flag.StringVar(&o.proxyCPU, "proxy-cpu", "0", "CPU the contender is pinned to")
	flag.StringVar(&o.loadCPU, "load-cpu", "1", "CPU the backend, wrk and h2load are pinned to")
	flag.BoolVar(&o.keepDir, "keep", false, "keep the temp dir with configs and logs")
	cellList := flag.String("cells", "all", "comma-separated cell groups: "+strings.Join(allGroups, ",")+" (or all)")
	var rautaEnv string
	flag.StringVar(&rautaEnv, "rauta-env", "", "space-separated NAME=VALUE pairs added to rauta's (and rauta-b's) environment")
	compare := flag.Bool("compare", false, "measure nothing: pool the -out files named as arguments and print RAUTA's paired ratios over all of them")
	flag.Parse()
	o.rautaEnv = strings.Fields(rautaEnv)
	o.dataplaneArgs = strings.Fields(dpArgs)
	if *compare {
		if o.compare = flag.Args(); len(o.compare) == 0 {
			return o, errors.New("-compare needs the JSON files of earlier runs as arguments")
		}
		return o, nil
	}
	if o.out == "" {
		return o, errors.New("-out is required")
	}
	var err error
	if o.groups, err = parseGroups(*cellList); err != nil {
		return o, err
	}
	if o.quick {
		// -quick's 1 repeat unless -repeats is given: runtime settings are
		// compared over a few paired quick runs.
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		o.headline, o.duration = 0, 2*time.Second
		if !given["repeats"] {
			o.repeats = 1
		}
	}
	if o.repeats < 1 || o.headline < 0 || o.duration < time.Second {
		return o, errors.New("-repeats must be at least 1 and -duration at least 1s")
	}
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.contenders = append(o.contenders, c)
		}
	}
	return o, nil
}

func run() int {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		return 2
	}
	if o.compare != nil {
		out, err := compare(o.compare)
		if err != nil {
			fmt.Fprintln(os.Stderr, "proxybench:", err)
			return 1
		}
		fmt.Print(out)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ps := procgroup.NewSet()
	defer ps.StopAll() // also after a panic in this goroutine

	rep, err := bench(ctx, o, ps)
	if rep != nil {
		rep.finish()
		fmt.Print(rep.table())
		if werr := rep.writeJSON(o.out); werr != nil {
			fmt.Fprintln(os.Stderr, "proxybench:", werr)
			return 1
		}
		fmt.Printf("results written to %s\n", o.out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		return 1
	}
	if probs := rep.problems(); len(probs) > 0 {
		fmt.Fprintln(os.Stderr, "proxybench: problems:\n  "+strings.Join(probs, "\n  "))
		return 1
	}
	return 0
}

func bench(ctx context.Context, o options, ps *procgroup.Set) (*report, error) {
	dir, err := os.MkdirTemp("", "proxybench-")
	if err != nil {
		return nil, err
	}
	// nginx workers run as an unprivileged user and must read the files.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if o.keepDir {
		fmt.Println("temp dir:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := stageBinaries(dir, &o); err != nil {
		return nil, err
	}
	// The idle cell holds up to 50,000 connections in this process and
	// as many in the proxy, which inherits this limit.
	e := &env{dir: dir, feeds: &feeds{}}
	defer e.feeds.closeAll()
	if slices.Contains(o.groups, groupIdle) {
		if e.fdLimit, err = raiseNoFile(4 * idleMaxConns); err != nil {
			return nil, err
		}
	}
	shell := func(argv ...string) error { _, err := runTool(ctx, 30*time.Second, argv); return err }
	if err := e.writeCert(shell); err != nil {
		return nil, err
	}
	if err := e.writeBodies(); err != nil {
		return nil, fmt.Errorf("write bodies: %w", err)
	}
	chk, err := newChecker(e.certFile, e.bodies)
	if err != nil {
		return nil, err
	}

	if !slices.Contains(o.groups, groupHTTP) {
		o.headline = 0 // the headline cell is an HTTP cell
	}
	cells := []cell(nil)
	if slices.Contains(o.groups, groupHTTP) {
		cells = defaultCells
		if o.quick {
			cells = quickCells
		}
		if o.headlineOnly {
			cells = []cell{headlineCell}
		}
	}
	if err := e.writeWrkScripts(cells); err != nil {
		return nil, err
	}
	var xcells []xcell
	for _, g := range o.groups {
		xcells = append(xcells, xcellsOf(g, o.quick)...)
	}
	rep := newReport(o, cells, xcells)
	var cts []*contender
	for _, name := range o.contenders {
		c, err := newContender(name, e, o)
		if err != nil {
			return nil, err
		}
		if name == "rauta" || name == rautaB {
			c.Env = append(c.Env, o.rautaEnv...)
		}
		cts = append(cts, c)
		rep.Contenders = append(rep.Contenders, c)
	}
	x, err := newExtras(e, o, cts, xcells)
	if err != nil {
		return nil, err
	}

	// The backend: one nginx worker on the load CPU.
	bconf, err := e.write("backend.conf", e.backendConfig())
	if err != nil {
		return nil, err
	}
	bargv := []string{"taskset", "-c", o.loadCPU, "nginx", "-p", dir, "-c", bconf, "-e", e.path("backend-error.log")}
	rep.Backend = strings.Join(bargv, " ")
	if err := portsFree(append(endpointPorts(), directH2Port)...); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	backend, err := ps.Start("backend", bargv, nil, e.path("backend.Log"))
	if err != nil {
		return nil, err
	}
	direct, _ := newContender("direct", e, o)
	if err := chk.waitReady(ctx, direct, backend, 10*time.Second); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	if err := chk.verify(ctx, direct); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	// The Go backends of the gRPC and WebSocket cells, also on the load CPU.
	if x.needGoBackend() {
		gb, err := x.startGoBackend(ctx, ps)
		if err != nil {
			return nil, err
		}
		defer ps.Stop(gb, 3*time.Second)
	}

	total := o.repeats + o.headline
	for r := 0; r < total; r++ {
		cs, xs := cells, x.mainCells()
		if r >= o.repeats {
			cs, xs = []cell{headlineCell}, nil
		}
		// Rotate the order so no contender always runs first or last.
		for i := range cts {
			ct := cts[(i+r)%len(cts)]
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			mine := x.cellsFor(ct.Name, xs)
			if len(cs) > 0 || len(mine) > 0 {
				fmt.Printf("repeat %d/%d: %s\n", r+1, total, ct.Name)
				measureContender(ctx, o, e, ps, chk, ct, cs, mine, r, rep, x)
			}
			if r < o.repeats {
				x.measureIdle(ctx, ps, chk, ct, r, rep)
				x.measureRoutes(ctx, ps, ct, r, rep)
			}
			if done, err := backend.Exited(); done {
				return rep, fmt.Errorf("backend exited (%w); log %s", err, fileTail(backend.Log, 400))
			}
		}
	}
	return rep, nil
}

// measureContender starts one contender, checks it, runs every cell once and
// stops it. Failures are recorded in the report, never skipped silently.
func measureContender(ctx context.Context, o options, e *env, ps *procgroup.Set, chk *checker, ct *contender, cells []cell, xcells []xcell, rep int, out *report, x *extras) {
	var p *procgroup.Proc
	if len(ct.Argv) > 0 {
		if err := portsFree(httpPort, httpsPort, httpsRSAPort, grpcPort, wsPort, rautaAdminPort); err != nil {
			out.fail(ct.Name, rep, "start", err)
			return
		}
		var err error
		p, err = ps.Start(ct.Name, ct.Argv, ct.Env, e.path(fmt.Sprintf("%s-%d.log", ct.Name, rep)))
		if err != nil {
			out.fail(ct.Name, rep, "start", err)
			return
		}
		defer ps.Stop(p, 5*time.Second)
		if err := chk.waitReady(ctx, ct, p, 15*time.Second); err != nil {
			out.fail(ct.Name, rep, "start", err)
			return
		}
	}
	if err := chk.verify(ctx, ct); err != nil {
		out.fail(ct.Name, rep, "answers", err)
		return
	}
	// Warm up connection pools and heaps; the numbers are discarded.
	wd := max(o.warmup.Round(time.Second), time.Second)
	if len(cells) > 0 {
		_, _ = runWrk(ctx, wrkArgv(o.loadCPU, e.path(headlineCell.scriptFile()), ct.H1URL+headlineCell.path(), 64, wd), wd)
		// -headline-only warms up without HTTP/2 over TLS: its buffers and
		// TLS state stay resident and would count in the headline's peak.
		// (The usual runs keep both warm-ups, also before the headline
		// repeats, as their earlier results were measured.)
		if !o.headlineOnly {
			_, _ = runH2load(ctx, h2loadArgv(o.loadCPU, e.path("h2load.log"), ct.H2URL+"/1k", 64, wd), e.path("h2load.log"), wd)
		}
	}

	for _, c := range cells {
		if ctx.Err() != nil {
			return
		}
		s := measure(o, p, ct.Name, c.name(), rep, c.answerSize(e.bodies), func() (result, error) {
			if c.Proto == "h2" {
				logFile := e.path("h2load.log")
				return runH2load(ctx, h2loadArgv(o.loadCPU, logFile, ct.H2URL+c.path(), c.Conns, o.duration), logFile, o.duration)
			}
			return runWrk(ctx, wrkArgv(o.loadCPU, e.path(c.scriptFile()), ct.H1URL+c.path(), c.Conns, o.duration), o.duration)
		})
		out.add(s)
		s.print()
	}
	for _, c := range xcells {
		if ctx.Err() != nil {
			return
		}
		out.add(x.measureClientCell(ctx, p, ct, c, rep))
	}
}

// measure runs one load run against the contender's process group p (nil
// for direct) and records its CPU time, peak RSS and the machine's load.
func measure(o options, p *procgroup.Proc, contender, cellName string, rep, body int, load func() (result, error)) sample {
	s := sample{Contender: contender, Cell: cellName, Repeat: rep}
	pgid := 0
	if p != nil {
		pgid = p.PGID()
		s.RSSReset = procgroup.ResetPeakRSS(pgid)
		s.CPUSeconds = -procgroup.CPUSeconds(pgid)
	}
	cpuBefore := readCPUTimes()
	res, err := load()
	s.Machine = cpuUseBetween(cpuBefore, readCPUTimes(), o.proxyCPU, o.loadCPU)
	if p != nil {
		s.CPUSeconds += procgroup.CPUSeconds(pgid)
		s.PeakRSS = procgroup.PeakRSSBytes(pgid)
		if done, perr := p.Exited(); done && err == nil {
			err = fmt.Errorf("contender exited during the run (%w); log: %s", perr, fileTail(p.Log, 400))
		}
	} else {
		s.CPUSeconds = 0
	}
	s.result = res
	if err == nil {
		err = res.check(body)
	}
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

func (s sample) print() {
	status := "ok"
	if s.Error != "" {
		status = "INVALID: " + s.Error
	}
	fmt.Printf("  %-22s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %5.2f s  %s  %s\n", s.Cell, s.RPS, s.P50ms, s.P99ms, s.CPUSeconds, s.Machine, status)
}

func mkdirWrite(dir, file, content string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Clean(file), []byte(content), 0o644)
}
