package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// kernelSample switches BPF run-time accounting on (BPF_ENABLE_STATS: it
// stays on only while its file descriptor is open) after a delay, and
// reports the observer programs' run time and runs from then to finish.
type kernelSample struct {
	done chan kernelStart
}

type kernelStart struct {
	closer io.Closer
	at     time.Time
	progs  map[string]progStats
	err    error
}

// progStats are one program's run-time accounting counters.
type progStats struct {
	runtime time.Duration
	runs    uint64
}

func (p progStats) nsPerRun() float64 {
	if p.runs == 0 {
		return 0
	}
	return float64(p.runtime.Nanoseconds()) / float64(p.runs)
}

func sampleKernel(ctx context.Context, after time.Duration) kernelSample {
	k := kernelSample{done: make(chan kernelStart, 1)}
	go func() {
		select {
		case <-ctx.Done():
			k.done <- kernelStart{err: ctx.Err()}
			return
		case <-time.After(after):
		}
		c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			k.done <- kernelStart{err: err}
			return
		}
		progs, err := observerPrograms()
		k.done <- kernelStart{closer: c, at: time.Now(), progs: progs, err: err}
	}()
	return k
}

// finish returns per program (by name) the run time and runs since
// accounting started, and how long it was on.
func (k kernelSample) finish() (map[string]progStats, time.Duration, error) {
	s := <-k.done
	if s.closer != nil {
		defer s.closer.Close()
	}
	if s.err != nil {
		return nil, 0, s.err
	}
	end, err := observerPrograms()
	if err != nil {
		return nil, 0, err
	}
	for name, e := range end {
		b := s.progs[name]
		end[name] = progStats{runtime: e.runtime - b.runtime, runs: e.runs - b.runs}
	}
	return end, time.Since(s.at), nil
}

// observerPrograms returns the run-time counters of the loaded programs
// whose name starts with "observe_" (the kernel keeps 15 characters of
// it), summed by name.
func observerPrograms() (map[string]progStats, error) {
	out := map[string]progStats{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, unix.ENOENT) {
			return out, nil
		}
		if err != nil {
			return nil, err
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
		ps := out[info.Name]
		ps.runtime += st.Runtime
		ps.runs += st.RunCount
		out[info.Name] = ps
	}
}
