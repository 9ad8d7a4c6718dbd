package main

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// kernelStats enables BPF run-time accounting (BPF_ENABLE_STATS: it stays
// on only while the returned closer is open) and sums the run time and run
// count of the loaded observer programs.
type kernelStats struct{ closer io.Closer }

func enableKernelStats() (*kernelStats, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, err
	}
	return &kernelStats{closer: c}, nil
}

func (k *kernelStats) Close() error { return k.closer.Close() }

// observerPrograms returns the summed runtime and runs of programs whose
// name starts with "observe_" (the kernel keeps 15 characters of it).
func observerPrograms() (time.Duration, uint64, error) {
	var (
		total time.Duration
		runs  uint64
		id    ebpf.ProgramID
	)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, unix.ENOENT) {
			return total, runs, nil
		}
		if err != nil {
			return 0, 0, err
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, ierr := p.Info()
		st, serr := p.Stats()
		p.Close()
		if ierr != nil || serr != nil || !strings.HasPrefix(info.Name, "observe_") {
			continue
		}
		total += st.Runtime
		runs += st.RunCount
	}
}
