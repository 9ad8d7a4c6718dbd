// Package procfs reads the CPU counters the benchmarks compare contenders
// by: the per-CPU lines of /proc/stat and a process's /proc/<pid>/stat.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of /proc/stat and of utime and stime in
// /proc/<pid>/stat; it is 100 on every Linux architecture Go supports.
const ClockTicks = 100

// Stat holds the fields of /proc/<pid>/stat the benchmarks use.
type Stat struct {
	Pgrp         int
	UTime, STime uint64 // clock ticks
}

// ParseStat reads pgrp, utime and stime from /proc/<pid>/stat. The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// after the last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("parse stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ppid(4) pgrp(5) ... utime(14) stime(15).
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("parse stat: %d fields after the command name, want at least 13", len(f))
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Stat{}, fmt.Errorf("parse stat: bad number in %q", f[:13])
	}
	return Stat{Pgrp: pgrp, UTime: ut, STime: st}, nil
}

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// CPUTimes are the counters of one cpu line of /proc/stat, in ticks.
type CPUTimes struct {
	Name                                                  string // "cpu" (all CPUs), "cpu0", "cpu1", ...
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// Total is the sum of the counters: the ticks that passed on the CPU.
func (c CPUTimes) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// ParseCPUTimes reads every cpu line of /proc/stat, in file order. A line
// with a bad number is left out and reported in err, with the good ones
// still returned.
func ParseCPUTimes(s string) (out []CPUTimes, err error) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var v [8]uint64
		var bad error
		for i := range v {
			if v[i], bad = strconv.ParseUint(f[i+1], 10, 64); bad != nil {
				break
			}
		}
		if bad != nil {
			if err == nil {
				err = fmt.Errorf("/proc/stat %s: %w", f[0], bad)
			}
			continue
		}
		out = append(out, CPUTimes{Name: f[0], User: v[0], Nice: v[1], System: v[2], Idle: v[3],
			IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7]})
	}
	return out, err
}

// ReadCPUTimes reads and parses /proc/stat.
func ReadCPUTimes() ([]CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return ParseCPUTimes(string(b))
}
