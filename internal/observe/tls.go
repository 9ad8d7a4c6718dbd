package observe

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/export"
	"github.com/false-systems/rauta/internal/observe/tlsprobe"
)

// TLSConfig turns on plaintext HTTP from inside TLS libraries (uprobes on
// OpenSSL and Go's crypto/tls, internal/observe/tlsprobe). Off by default: every process on
// the node that does TLS through a probed library pays a uprobe trap per
// SSL_read/SSL_write (about a microsecond each), the socket tracepoints
// run on every send and receive of the node, and the observer reads other
// processes' plaintext; an operator opts in.
type TLSConfig struct {
	Enabled bool // RAUTA_TLS_UPROBES
	// Libs are library paths probed at start besides the ones found in
	// the processes' maps (RAUTA_TLS_LIBS, comma-separated).
	Libs         []string
	ScanInterval time.Duration // RAUTA_TLS_SCAN_INTERVAL: rescan of /proc
	MaxLibs      int           // RAUTA_TLS_MAX_LIBS: library files probed
	RingBytes    int           // RAUTA_TLS_RING_BYTES: the TLS ring buffer
	MaxConns     int           // RAUTA_TLS_MAX_CONNS: TLS connections tracked in the kernel
	// CgroupRoot is the host's cgroup2 mount, on which the cgroup ids of
	// TLS records are resolved to pods (RAUTA_TLS_CGROUP_ROOT; "": the
	// first cgroup2 of /sys/fs/cgroup and /sys/fs/cgroup/unified).
	CgroupRoot string
}

func defaultTLS() TLSConfig {
	return TLSConfig{ScanInterval: 10 * time.Second, MaxLibs: 64, RingBytes: 4 << 20, MaxConns: 16384}
}

func (t *TLSConfig) registerFlags(fs *flag.FlagSet, e *envReader) {
	d := defaultTLS()
	fs.BoolVar(&t.Enabled, "tls-uprobes", e.boolean("RAUTA_TLS_UPROBES", false), "read plaintext HTTP/1.x from inside TLS: uprobes on OpenSSL's SSL_read/SSL_write in every libssl of the host and the node's processes, and on Go's crypto/tls in every Go binary they run; reported with url_scheme=\"https\" and the process (env RAUTA_TLS_UPROBES)")
	fs.Func("tls-libs", "with -tls-uprobes, libssl paths probed at start besides those found in the host's library folders and /proc/*/maps, comma-separated (env RAUTA_TLS_LIBS)", func(s string) error {
		t.Libs = splitList(s)
		return nil
	})
	t.Libs = splitList(e.str("RAUTA_TLS_LIBS", ""))
	fs.DurationVar(&t.ScanInterval, "tls-scan-interval", e.dur("RAUTA_TLS_SCAN_INTERVAL", d.ScanInterval), "how often /proc/*/maps is scanned for new TLS libraries (env RAUTA_TLS_SCAN_INTERVAL)")
	fs.IntVar(&t.MaxLibs, "tls-max-libs", e.integer("RAUTA_TLS_MAX_LIBS", d.MaxLibs), "most files probed: libssl libraries and Go binaries (env RAUTA_TLS_MAX_LIBS)")
	fs.IntVar(&t.RingBytes, "tls-ring-bytes", e.integer("RAUTA_TLS_RING_BYTES", d.RingBytes), "TLS ring buffer size, power of two (env RAUTA_TLS_RING_BYTES)")
	fs.StringVar(&t.CgroupRoot, "tls-cgroup-root", e.str("RAUTA_TLS_CGROUP_ROOT", ""), "with -tls-uprobes, the host's cgroup2 mount, on which a TLS record's cgroup id is resolved to its pod; empty: the first cgroup2 file system of /sys/fs/cgroup and /sys/fs/cgroup/unified (env RAUTA_TLS_CGROUP_ROOT)")
	fs.IntVar(&t.MaxConns, "tls-max-conns", e.integer("RAUTA_TLS_MAX_CONNS", d.MaxConns), "TLS connections whose plaintext offsets the kernel tracks, least recently used first out (env RAUTA_TLS_MAX_CONNS)")
}

func (t TLSConfig) validate() []error {
	if !t.Enabled {
		return nil
	}
	var errs []error
	if t.RingBytes < 4096 || t.RingBytes&(t.RingBytes-1) != 0 {
		errs = append(errs, fmt.Errorf("tls-ring-bytes: %d is not a power of two of at least 4096", t.RingBytes))
	}
	if t.MaxLibs <= 0 || t.MaxConns <= 0 || t.ScanInterval <= 0 {
		errs = append(errs, errors.New("tls-max-libs, tls-max-conns and tls-scan-interval must be positive"))
	}
	return errs
}

// tlsDrainMax bounds the TLS records handled per drain, so that a burst
// of them cannot hold up the packet ring for long; the rest wait for the
// next drain (every poll timeout and every tick).
const tlsDrainMax = 4096

// commLimit bounds the process cache and the cgroup cache (tlspods.go).
const commLimit = 4096

// tlsSource feeds plaintext from TLS library probes into the pipeline as
// events of their own streams (capture.Event with Stream and PID set).
type tlsSource struct {
	probe *tlsprobe.Probe
	rd    *tlsprobe.Reader
	ev    capture.Event
	procs map[uint32]procInfo
	// cgroupKeys: pod keys by cgroup id, "" for a cgroup of no pod
	// (tlspods.go); cgroupRoot the cgroup2 mount they are resolved on
	// (-1: none), proc the procfs processes' cgroups are read from.
	cgroupKeys   map[uint64]string
	cgroupRoot   int
	cgroupMisses uint64
	proc         string
	stats        tlsprobe.Stats
}

// startTLS loads the TLS probes, probes the libraries found and starts
// the rescans; stop detaches everything.
func startTLS(ctx context.Context, c TLSConfig, logger *slog.Logger) (src *tlsSource, stop func() error, err error) {
	probe, err := tlsprobe.Open(tlsprobe.Options{RingBytes: uint32(c.RingBytes), MaxConns: uint32(c.MaxConns), MaxLibraries: c.MaxLibs})
	if err != nil {
		return nil, nil, fmt.Errorf("tls uprobes: %w", err)
	}
	if probe.NoAddresses != nil {
		logger.Warn("tls: connections' addresses unknown (needs Linux 6.3+); exchanges carry the process only", "err", probe.NoAddresses)
	}
	rd, err := tlsprobe.NewReader(probe)
	if err != nil {
		return nil, nil, errors.Join(err, probe.Close())
	}
	sc := &tlsprobe.Scanner{Probe: probe, Interval: c.ScanInterval, Extra: c.Libs, Report: func(attached []string, errs []error) {
		for _, a := range attached {
			logger.Info("tls: library probed", "path", a)
		}
		for _, e := range errs {
			logger.Debug("tls: library not probed", "err", e)
		}
	}}
	// The first pass runs before Run returns from start-up, so that TLS
	// traffic of processes already running is seen from the start.
	attached, errs := sc.Pass()
	sc.Report(attached, errs)
	scanCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc.Run(scanCtx)
	}()
	cgRoot, err := openCgroupRoot(c.CgroupRoot)
	if err != nil {
		logger.Warn("tls: cgroup ids resolved through /proc only: the pods of processes that exit before their records are read stay unknown", "err", err)
	}
	stop = func() error {
		cancel()
		<-done
		if cgRoot >= 0 {
			_ = unix.Close(cgRoot) // a directory opened read-only
		}
		return errors.Join(rd.Close(), probe.Close())
	}
	return &tlsSource{probe: probe, rd: rd, procs: map[uint32]procInfo{}, cgroupKeys: map[uint64]string{}, cgroupRoot: cgRoot, proc: "/proc"}, stop, nil
}

// drainTLS hands the waiting TLS records to the pipeline.
func (p *pipeline) drainTLS() {
	t := p.tls
	if t == nil {
		return
	}
	// Drain fails only once the reader is closed, after the loop ended.
	_, _ = t.rd.Drain(tlsDrainMax, func(e *tlsprobe.Event) {
		if pi := t.procs[e.PID]; pi.comm != e.Comm || pi.cgroup != e.Cgroup {
			if len(t.procs) >= commLimit {
				clear(t.procs)
			}
			t.procs[e.PID] = procInfo{comm: e.Comm, cgroup: e.Cgroup, podKey: t.cgroupPodKey(e.Cgroup, e.PID)}
		}
		// A TLS connection is a stream of its own: plaintext offsets are
		// its sequence and acknowledgment numbers, every record has
		// both, and the (SSL pointer, process) pair keys it.
		t.ev = capture.Event{
			TimestampNS: e.TimestampNS, Src: e.Src, Dst: e.Dst,
			Seq: e.Seq, Ack: e.Ack, PayloadLen: e.Len,
			Kind: capture.KindPayload, TCPFlags: capture.FlagACK,
			Data: e.Data, Stream: e.Conn, PID: e.PID,
		}
		p.handle(&t.ev)
	})
}

// process names the process of a TLS exchange ("" for packets).
func (p *pipeline) process(pid uint32) string {
	if p.tls == nil || pid == 0 {
		return ""
	}
	return p.tls.procs[pid].comm
}

// tlsStats refreshes the TLS counters (on the pipeline's tick).
func (p *pipeline) tlsStats() {
	if p.tls == nil {
		return
	}
	if s, err := p.tls.probe.Stats(); err == nil {
		p.tls.stats = s
	}
	p.local.TLS = export.TLSStats{
		Events: p.tls.stats.Events, RingFull: p.tls.stats.RingFull, Truncated: p.tls.stats.Truncated,
		Libraries: p.tls.stats.Libraries, Malformed: p.tls.rd.Malformed(), CgroupUnread: p.tls.cgroupMisses,
	}
}
