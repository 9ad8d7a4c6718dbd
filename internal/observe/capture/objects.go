package capture

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"

	"github.com/false-systems/rauta/bpf"
)

// Objects are the loaded kernel programs and maps. Only the programs the
// chosen mode needs are loaded, so XDP's newer helpers do not stop TC mode
// from loading on older kernels.
type Objects struct {
	TCIngress  *ebpf.Program
	TCEgress   *ebpf.Program
	XDPIngress *ebpf.Program
	Events     *ebpf.Map
	Stats      *ebpf.Map
}

type tcObjects struct {
	TCIngress *ebpf.Program `ebpf:"observe_tc_ingress"`
	TCEgress  *ebpf.Program `ebpf:"observe_tc_egress"`
	Events    *ebpf.Map     `ebpf:"events"`
	Stats     *ebpf.Map     `ebpf:"stats"`
}

type xdpObjects struct {
	XDPIngress *ebpf.Program `ebpf:"observe_xdp_ingress"`
	Events     *ebpf.Map     `ebpf:"events"`
	Stats      *ebpf.Map     `ebpf:"stats"`
}

// LoadOptions select what to load.
type LoadOptions struct {
	// XDP loads the XDP program instead of the TC pair (Linux 5.18+).
	XDP bool
	// RingBytes sizes the ring buffer: a power of two, multiple of the page
	// size. Zero keeps the object's default (8 MiB).
	RingBytes uint32
	// WakeupBytes: the kernel wakes the reader only when this much data is
	// waiting; the reader must then poll with a deadline (Reader.Next
	// returns ErrTimeout) to pick up smaller amounts. Zero wakes on every
	// event.
	WakeupBytes uint64
	// NoH2 leaves h2c connections unfollowed (their segments are counted
	// as non-HTTP) and saves the map lookup every other non-HTTP/1
	// segment with payload costs. The zero value follows them.
	NoH2 bool
}

// Load checks the kernel features the programs need and loads them.
// Errors wrap ebpf.ErrNotSupported when the kernel lacks a feature and name
// the capability when the process lacks privileges.
func Load(opts LoadOptions) (*Objects, error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", explainPerm(err))
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return nil, fmt.Errorf("kernel feature BPF ring buffer (Linux 5.8+): %w", explainPerm(err))
	}
	spec, err := bpf.LoadObserver()
	if err != nil {
		return nil, fmt.Errorf("load observer spec: %w", err)
	}
	if opts.RingBytes != 0 {
		if opts.RingBytes&(opts.RingBytes-1) != 0 || opts.RingBytes < 4096 {
			return nil, fmt.Errorf("ring buffer size %d: must be a power of two >= 4096", opts.RingBytes)
		}
		spec.Maps["events"].MaxEntries = opts.RingBytes
	}
	if opts.WakeupBytes >= uint64(spec.Maps["events"].MaxEntries) {
		return nil, fmt.Errorf("wakeup threshold %d: must be below the ring buffer size %d", opts.WakeupBytes, spec.Maps["events"].MaxEntries)
	}
	if err := spec.Variables["wakeup_bytes"].Set(opts.WakeupBytes); err != nil {
		return nil, fmt.Errorf("set wakeup threshold: %w", err)
	}
	follow := uint8(1)
	if opts.NoH2 {
		follow = 0
	}
	if err := spec.Variables["follow_h2"].Set(follow); err != nil {
		return nil, fmt.Errorf("set follow_h2: %w", err)
	}

	if opts.XDP {
		if err := features.HaveProgramType(ebpf.XDP); err != nil {
			return nil, fmt.Errorf("kernel feature XDP programs: %w", explainPerm(err))
		}
		var o xdpObjects
		if err := spec.LoadAndAssign(&o, nil); err != nil {
			return nil, fmt.Errorf("load XDP observer (needs Linux 5.18+ for bpf_xdp_load_bytes): %w", explainPerm(err))
		}
		return &Objects{XDPIngress: o.XDPIngress, Events: o.Events, Stats: o.Stats}, nil
	}

	if err := features.HaveProgramType(ebpf.SchedCLS); err != nil {
		return nil, fmt.Errorf("kernel feature TC classifier programs: %w", explainPerm(err))
	}
	var o tcObjects
	if err := spec.LoadAndAssign(&o, nil); err != nil {
		return nil, fmt.Errorf("load TC observer: %w", explainPerm(err))
	}
	return &Objects{TCIngress: o.TCIngress, TCEgress: o.TCEgress, Events: o.Events, Stats: o.Stats}, nil
}

// ReadStats reads the kernel counters.
func (o *Objects) ReadStats() (KernelStats, error) { return readStats(o.Stats) }

// Close releases every program and map.
func (o *Objects) Close() error {
	var errs []error
	for _, p := range []*ebpf.Program{o.TCIngress, o.TCEgress, o.XDPIngress} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	for _, m := range []*ebpf.Map{o.Events, o.Stats} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}
