package capture

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Stat indexes mirror enum stat_index in bpf/observer.c.
const (
	statEvents = iota
	statRingbufFull
	statNonHTTP
	statTruncated
	statMax
)

// KernelStats are the counters the kernel programs keep, summed over CPUs.
type KernelStats struct {
	Events      uint64 // events submitted to the ring buffer
	RingbufFull uint64 // events lost because the ring buffer was full
	NonHTTP     uint64 // TCP segments with payload that did not start like HTTP/1.x
	Truncated   uint64 // events whose payload exceeded CaptureLen
}

func readStats(m *ebpf.Map) (KernelStats, error) {
	var out [statMax]uint64
	var perCPU []uint64
	for i := uint32(0); i < statMax; i++ {
		if err := m.Lookup(i, &perCPU); err != nil {
			return KernelStats{}, fmt.Errorf("read stats[%d]: %w", i, err)
		}
		for _, v := range perCPU {
			out[i] += v
		}
	}
	return KernelStats{
		Events:      out[statEvents],
		RingbufFull: out[statRingbufFull],
		NonHTTP:     out[statNonHTTP],
		Truncated:   out[statTruncated],
	}, nil
}
