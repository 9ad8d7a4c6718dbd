// Package procgroup starts the long-running processes a benchmark or probe
// harness compares (proxies, backends) each in its own process group, and
// stops every one of them on success, failure and Ctrl-C alike. Stopping
// signals the whole group, which also reaches nginx workers.
package procgroup

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/false-systems/rauta/bench/internal/procfs"
)

// Set tracks the processes started through it.
type Set struct {
	mu   sync.Mutex
	live map[int]*Proc
}

// Proc is one started process.
type Proc struct {
	Name string
	Log  string // where its stdout and stderr go
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{live: map[int]*Proc{}} }

// Start runs argv with env added to the environment, stdout and stderr in
// logPath. The process is its own group leader, so its pid is its pgid; it
// is killed when the harness dies.
func (s *Set) Start(name string, argv, env []string, logPath string) (*Proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.live[cmd.Process.Pid] = p
	s.mu.Unlock()
	return p, nil
}

// PGID is the process group the process leads.
func (p *Proc) PGID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the group, then SIGKILL after grace. It is safe to
// call more than once.
func (s *Set) Stop(p *Proc, grace time.Duration) {
	s.mu.Lock()
	delete(s.live, p.PGID())
	s.mu.Unlock()
	if ok, _ := p.Exited(); !ok {
		_ = syscall.Kill(-p.PGID(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.PGID(), syscall.SIGKILL)
			<-p.done
		}
	}
	// Workers that outlived their master (nginx, on SIGKILL) keep the group
	// alive; while any member lives its id cannot be reused, so the signal
	// only reaches processes this harness started.
	if len(GroupPIDs(p.PGID())) > 0 {
		_ = syscall.Kill(-p.PGID(), syscall.SIGKILL)
	}
}

// StopAll stops every process still running.
func (s *Set) StopAll() {
	s.mu.Lock()
	all := make([]*Proc, 0, len(s.live))
	for _, p := range s.live {
		all = append(all, p)
	}
	s.mu.Unlock()
	for _, p := range all {
		s.Stop(p, 3*time.Second)
	}
}

// GroupPIDs lists the live processes of process group pgid (a proxy and
// its workers).
func GroupPIDs(pgid int) []int {
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

// CPUSeconds sums user and system CPU time of the group's live processes.
func CPUSeconds(pgid int) float64 {
	var ticks uint64
	for _, pid := range GroupPIDs(pgid) {
		if st, err := procfs.ReadStat(pid); err == nil {
			ticks += st.UTime + st.STime
		}
	}
	return float64(ticks) / procfs.ClockTicks
}

// RSSBytes sums VmRSS over the group's live processes (nginx's master and
// workers, for example).
func RSSBytes(pgid int) uint64 { return sumKB(pgid, "status", "VmRSS:") }

// PeakRSSBytes sums VmHWM over the group's live processes.
func PeakRSSBytes(pgid int) uint64 { return sumKB(pgid, "status", "VmHWM:") }

// PSSBytes sums Pss over the group's processes: pages shared between
// processes (nginx's master and worker share the parsed config after fork)
// count once, split between them, where VmRSS counts them in each.
func PSSBytes(pgid int) uint64 { return sumKB(pgid, "smaps_rollup", "Pss:") }

// ResetPeakRSS clears VmHWM of the group's processes (writing 5 to
// clear_refs, root only) so the next reading is the peak of one run. It
// reports whether every reset worked; when not, VmHWM is the lifetime peak.
func ResetPeakRSS(pgid int) bool {
	ok := true
	for _, pid := range GroupPIDs(pgid) {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}

// sumKB sums the "key N kB" line of /proc/<pid>/file over the group.
func sumKB(pgid int, file, key string) uint64 {
	var total uint64
	for _, pid := range GroupPIDs(pgid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		if err != nil {
			continue
		}
		if kb, ok := StatusKB(b, key); ok {
			total += kb << 10
		}
	}
	return total
}

// StatusKB reads a "Name:   123 kB" line of /proc/<pid>/status.
func StatusKB(b []byte, key string) (uint64, bool) {
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
