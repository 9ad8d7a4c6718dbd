package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progStats are one program's run-time accounting counters.
type progStats struct {
	runtime time.Duration
	runs    uint64
}

// enableBPFStats switches the kernel's BPF run-time accounting on until the
// returned closer is closed (it costs every program on the machine two
// clock reads per run, so it is on only during a mesh path's timed
// requests).
func enableBPFStats() (io.Closer, error) {
	return ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
}

// agentPrograms returns the counters of the BPF programs the process pid
// holds (the agent's: its cgroup hooks, sockops and sk_msg), by program
// name. Programs other processes loaded with the same names (a test
// running meanwhile) are not counted.
func agentPrograms(pid int) (map[string]progStats, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	out := map[string]progStats{}
	seen := map[ebpf.ProgramID]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil || target != "anon_inode:bpf-prog" {
			continue
		}
		id, err := fdinfoProgID(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil || seen[id] {
			continue
		}
		seen[id] = true
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, ierr := p.Info()
		st, serr := p.Stats()
		p.Close()
		if ierr != nil || serr != nil {
			continue
		}
		ps := out[info.Name]
		ps.runtime += st.Runtime
		ps.runs += st.RunCount
		out[info.Name] = ps
	}
	return out, nil
}

func fdinfoProgID(path string) (ebpf.ProgramID, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "prog_id:"); ok {
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			return ebpf.ProgramID(id), err
		}
	}
	return 0, fmt.Errorf("%s: no prog_id", path)
}

// progDelta is end minus start, per program.
func progDelta(start, end map[string]progStats) map[string]progStats {
	out := map[string]progStats{}
	for name, e := range end {
		s := start[name]
		if d := (progStats{runtime: e.runtime - s.runtime, runs: e.runs - s.runs}); d.runs > 0 {
			out[name] = d
		}
	}
	return out
}
