package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/false-systems/rauta/bench/internal/procfs"
)

// groupPIDs lists the processes of process group pgid (a contender and its
// workers).
func groupPIDs(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err == nil && st.Pgrp == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuSeconds sums user and system CPU time of the group's live processes.
func cpuSeconds(pgid int) float64 {
	var ticks uint64
	for _, pid := range groupPIDs(pgid) {
		if st, err := procfs.ReadStat(pid); err == nil {
			ticks += st.UTime + st.STime
		}
	}
	return float64(ticks) / procfs.ClockTicks
}

// resetPeakRSS clears VmHWM of the group's processes (writing 5 to
// clear_refs, root only) so the next reading is the peak of one run. It
// reports whether every reset worked; when not, VmHWM is the lifetime peak.
func resetPeakRSS(pgid int) bool {
	ok := true
	for _, pid := range groupPIDs(pgid) {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}

// peakRSSBytes sums VmHWM over the group's processes.
func peakRSSBytes(pgid int) uint64 {
	var total uint64
	for _, pid := range groupPIDs(pgid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		if kb, ok := statusKB(b, "VmHWM:"); ok {
			total += kb * 1024
		}
	}
	return total
}

// statusKB reads a "Name:   123 kB" line of /proc/<pid>/status.
func statusKB(b []byte, key string) (uint64, bool) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			v, err := strconv.ParseUint(f[0], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}
