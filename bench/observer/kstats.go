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
	closer  io.Closer
	at      time.Time
	runtime time.Duration
	runs    uint64
	err     error
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
		rt, runs, err := observerPrograms()
		k.done <- kernelStart{closer: c, at: time.Now(), runtime: rt, runs: runs, err: err}
	}()
	return k
}

// finish returns the run time and runs since accounting started, and how
// long it was on.
func (k kernelSample) finish() (time.Duration, uint64, time.Duration, error) {
	s := <-k.done
	if s.closer != nil {
		defer s.closer.Close()
	}
	if s.err != nil {
		return 0, 0, 0, s.err
	}
	rt, runs, err := observerPrograms()
	if err != nil {
		return 0, 0, 0, err
	}
	return rt - s.runtime, runs - s.runs, time.Since(s.at), nil
}

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
