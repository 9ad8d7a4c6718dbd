// Command dpmem measures the memory of the per-Gateway data plane as it is
// deployed: it translates routegen's n HTTPRoutes, serves them on a real
// config stream (configstream.Server over TLS, a token) on loopback, starts
// a rauta-dataplane binary against it, waits until /readyz answers 200 and
// reports the time that took and the process's RSS (anonymous and file
// pages) a few seconds later, with the Go heap figures of /debug/pprof.
//
//	go build -o /tmp/rauta-dataplane ./cmd/rauta-dataplane
//	go run ./bench/dpmem -dataplane /tmp/rauta-dataplane -routes 10000
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/false-systems/rauta/bench/internal/dpfeed"
	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/translate"
)

func main() {
	bin := flag.String("dataplane", "bin/rauta-dataplane", "rauta-dataplane binary")
	routes := flag.Int("routes", 10000, "HTTPRoutes (bench/routegen)")
	offset := flag.Int("port-offset", 28000, "-low-port-offset of the data plane: its listener is on 80 plus this")
	admin := flag.String("admin-addr", "127.0.0.1:28461", "the data plane's admin address")
	probes := flag.String("metrics-addr", "127.0.0.1:28463", "the data plane's probe address")
	settle := flag.Duration("settle", 5*time.Second, "wait after ready before reading memory (the data plane returns free heap to the OS 3 s after applying)")
	timeout := flag.Duration("timeout", 60*time.Second, "longest wait for ready")
	profile := flag.String("heap-profile", "", "write the data plane's heap profile (after a GC) to this file, and with -load the one after the load to this file with .load added")
	var ld load
	flag.IntVar(&ld.requests, "load", 0, "requests sent through the data plane after the idle reading (0: none), then memory is read again")
	flag.IntVar(&ld.routes, "load-routes", 100, "HTTPRoutes the load goes to; their endpoints become one loopback backend")
	flag.IntVar(&ld.conns, "load-conns", 16, "concurrent client connections of the load")
	flag.DurationVar(&ld.limit, "load-time", 60*time.Second, "longest the load runs")
	flag.BoolVar(&ld.close, "load-close", false, "send every request of the load on a new connection")
	flag.DurationVar(&ld.scrapeEvery, "load-scrape-every", 0, "fetch the data plane's /metrics this often during the load (0: never)")
	flag.Parse()
	if err := run(*bin, *routes, *offset, *admin, *probes, *settle, *timeout, *profile, ld); err != nil {
		fmt.Fprintln(os.Stderr, "dpmem:", err)
		os.Exit(1)
	}
}

func run(bin string, routes, offset int, admin, probes string, settle, timeout time.Duration, profile string, ld load) error {
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	res := translate.Translate(routegen.Resources(routes), translate.Options{Provisioned: true})
	if ld.requests > 0 {
		stop, err := ld.backend(res.IR, routes)
		if err != nil {
			return err
		}
		defer stop()
	}
	cfg := configstream.NewConfig(key, 1, res.IR)
	feed, err := dpfeed.Start("", key)
	if err != nil {
		return err
	}
	defer feed.Close()
	feed.Publish(cfg)

	start := time.Now()
	cmd := exec.Command(bin, append(feed.Args("dpmem"),
		"-low-port-offset", fmt.Sprint(offset), "-address", "127.0.0.1", "-admin-addr", admin,
		"-metrics-addr", probes, "-access-log=false", "-log-level", "warn", "-pprof")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	if err := waitReady(client, "http://"+probes+"/readyz", timeout); err != nil {
		return err
	}
	ready := time.Since(start)
	time.Sleep(settle)
	mem, err := procMemory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	heap, err := heapFigures(client, "http://"+admin+"/debug/pprof/heap?debug=1")
	if err != nil {
		return err
	}
	if profile != "" {
		if err := saveProfile(client, "http://"+admin+"/debug/pprof/heap?gc=1", profile); err != nil {
			return err
		}
	}
	fmt.Printf("routes %d (IR routes %d), frame %.1f MiB\n", routes, irRoutes(res), float64(len(cfg.Frame()))/(1<<20))
	fmt.Printf("ready %.2f s; %s\n%s\n", ready.Seconds(), mem, heap)
	if ld.requests == 0 {
		return nil
	}
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return err
	}
	ld.scrapeURL = "http://" + probes + "/metrics"
	summary, err := ld.run(fmt.Sprintf("http://127.0.0.1:%d", 80+offset))
	if err != nil {
		return err
	}
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return err
	}
	summary += fmt.Sprintf("; data plane CPU %.2f s (%.1f µs per request)", (cpu1 - cpu0).Seconds(), float64((cpu1-cpu0).Microseconds())/float64(ld.requests))
	loaded, err := procMemory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	if heap, err = heapFigures(client, "http://"+admin+"/debug/pprof/heap?debug=1"); err != nil {
		return err
	}
	fmt.Printf("load: %s\nright after the load: %s\n%s\n", summary, loaded, heap)
	time.Sleep(settle)
	if loaded, err = procMemory(cmd.Process.Pid); err != nil {
		return err
	}
	fmt.Printf("%s after: %s\n", settle, loaded)
	if profile != "" {
		// The second profile is what the load left behind: state kept
		// per route or per backend once requests reached it.
		if err := saveProfile(client, "http://"+admin+"/debug/pprof/heap?gc=1", profile+".load"); err != nil {
			return err
		}
	}
	return nil
}

func irRoutes(res translate.Result) int {
	n := 0
	for _, l := range res.IR.Listeners {
		for _, vh := range l.VirtualHosts {
			n += len(vh.Routes)
		}
	}
	return n
}

// waitReady polls url until it answers 200, every 20 ms, for at most limit.
func waitReady(client *http.Client, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("data plane not ready within " + limit.String())
}

// procMemory is the VmRSS, RssAnon and RssFile lines of the process.
func procMemory(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "RssAnon") || strings.HasPrefix(l, "RssFile") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, ", "), nil
}

// saveProfile writes the heap profile at url to file, for
// go tool pprof -sample_index=inuse_space.
func saveProfile(client *http.Client, url, file string) error {
	b, err := fetch(client, url)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}

// fetch returns the body at url, at most 64 MiB of it.
func fetch(client *http.Client, url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// procCPU is the process's user and system time (/proc/PID/stat, in clock
// ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it do not.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// heapFigures picks the runtime.MemStats lines that say where the heap is.
func heapFigures(client *http.Client, url string) (string, error) {
	b, err := fetch(client, url)
	if err != nil {
		return "", err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, k := range []string{"# HeapAlloc ", "# HeapInuse ", "# HeapIdle ", "# HeapReleased ", "# NextGC "} {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.TrimPrefix(l, "# "))
			}
		}
	}
	return strings.Join(out, ", "), nil
}
