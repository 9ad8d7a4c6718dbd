package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

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
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		st, err := parseStat(b)
		if err == nil && st.pgrp == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

type statFields struct {
	pgrp         int
	utime, stime uint64 // clock ticks
}

// parseStat reads pgrp, utime and stime from /proc/<pid>/stat. The command
// name (field 2) may hold spaces and parentheses, so fields are counted after
// the last ')'.
func parseStat(b []byte) (statFields, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statFields{}, fmt.Errorf("parse stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ppid(4) pgrp(5) ... utime(14) stime(15).
	if len(f) < 13 {
		return statFields{}, fmt.Errorf("parse stat: %d fields after the command name, want at least 13", len(f))
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	stt, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return statFields{}, fmt.Errorf("parse stat: bad number in %q", f[:13])
	}
	return statFields{pgrp: pgrp, utime: ut, stime: stt}, nil
}

// cpuSeconds sums user and system CPU time of the group's live processes.
func cpuSeconds(pgid int) float64 {
	var ticks uint64
	for _, pid := range groupPIDs(pgid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if st, err := parseStat(b); err == nil {
			ticks += st.utime + st.stime
		}
	}
	return float64(ticks) / clockTicks
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
