package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/bench/internal/procfs"
)

// readCPUs returns the per-CPU lines of /proc/stat ("cpu0", "cpu1", ...),
// without the "cpu" line for all of them.
func readCPUs() ([]procfs.CPUTimes, error) {
	lines, err := procfs.ReadCPUTimes()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(lines, func(c procfs.CPUTimes) bool { return c.Name == "cpu" }), nil
}

// procCPU is the user+system time of one process (all its threads).
func procCPU(pid int) (time.Duration, error) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(st.UTime+st.STime) * time.Second / procfs.ClockTicks, nil
}

// selfCPU is this process's user+system time (the observer runs here).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuUse is where the CPU went during one run, in percent of one CPU.
type cpuUse struct {
	wrk, server, self float64 // processes (self: this process, i.e. the observer and the bench)
	// per CPU: busy (everything but idle and steal), of which softirq
	busy, softirq, steal []float64
	// other is CPU time neither these processes nor softirq/irq account
	// for: other jobs on the machine (and kernel threads). A run with a
	// lot of it was disturbed.
	other float64
}

// stolen is the CPU time the hypervisor gave to other guests, summed over
// CPUs (percent of one CPU).
func (u cpuUse) stolen() float64 {
	var s float64
	for _, v := range u.steal {
		s += v
	}
	return s
}

// cpuProbe snapshots the counters at the start of a run.
type cpuProbe struct {
	start     time.Time
	cpus      []procfs.CPUTimes
	server    time.Duration
	self      time.Duration
	serverPID int
}

func startCPUProbe(serverPID int) cpuProbe {
	p := cpuProbe{start: time.Now(), serverPID: serverPID, self: selfCPU()}
	p.cpus, _ = readCPUs()
	p.server, _ = procCPU(serverPID)
	return p
}

// finish computes the use since start; wrk is the loader's own CPU time
// (from its rusage after it exited).
func (p cpuProbe) finish(wrk time.Duration) cpuUse {
	elapsed := time.Since(p.start)
	pc := func(d time.Duration) float64 { return float64(d) / float64(elapsed) * 100 }
	u := cpuUse{wrk: pc(wrk), self: pc(selfCPU() - p.self)}
	if s, err := procCPU(p.serverPID); err == nil {
		u.server = pc(s - p.server)
	}
	end, err := readCPUs()
	if err != nil || len(end) != len(p.cpus) {
		return u
	}
	for i := range end {
		a, b := p.cpus[i], end[i]
		tot := float64(b.Total() - a.Total())
		if tot <= 0 {
			tot = 1
		}
		idle := float64((b.Idle + b.IOWait) - (a.Idle + a.IOWait))
		steal := float64(b.Steal - a.Steal)
		u.busy = append(u.busy, (tot-idle-steal)/tot*100)
		u.softirq = append(u.softirq, float64(b.SoftIRQ-a.SoftIRQ)/tot*100)
		u.steal = append(u.steal, steal/tot*100)
		u.other += (tot - idle - steal - float64(b.SoftIRQ-a.SoftIRQ) - float64(b.IRQ-a.IRQ)) / tot * 100
	}
	u.other = max(0, u.other-u.wrk-u.server-u.self)
	return u
}

func (u cpuUse) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CPU%%: wrk %.0f server %.0f self %.1f other %.0f", u.wrk, u.server, u.self, u.other)
	for i := range u.busy {
		fmt.Fprintf(&b, " | cpu%d busy %.0f softirq %.0f steal %.1f", i, u.busy[i], u.softirq[i], u.steal[i])
	}
	return b.String()
}

// pinProcess sets the CPU affinity of every thread of this process (new
// threads inherit it) to list, a comma-separated list of CPUs or ranges.
func pinProcess(list string) error {
	var set unix.CPUSet
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return fmt.Errorf("observer-cpus %q: %w", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return fmt.Errorf("observer-cpus %q: %w", list, err)
			}
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("pin thread %d to %s: %w", tid, list, err)
		}
	}
	return nil
}
