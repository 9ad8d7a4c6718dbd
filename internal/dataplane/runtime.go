package dataplane

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the data plane's collector target (GOGC) when neither
// -gc-percent nor GOGC says otherwise. A data plane's live heap is small
// next to the binary's pages (one route under load: about 5 MB live, 15-16
// MiB of binary pages resident), and the heap the runtime keeps follows the
// collector's goal, live heap times 1 + GOGC/100. Peak RSS under the
// headline load (HTTP/1.1, 64 connections, 1 KiB; bench/proxybench -quick,
// 3 paired repeats): Go's 100 28.0-29.0 MiB, 50 24.6-25.2, 40 24.2-24.4, 30
// 23.6-24.2, all at the same CPU per request. The cost is in the cells
// whose relays make garbage: against 50, 40 took 1.07x the CPU per request
// with 64 KiB bodies and 1.04x on HTTP/2, 30 1.20x and 1.04x, 25 (against
// 100) 1.33x and 1.13x. 40 is the highest that keeps the headline below
// 25 MiB in every run (docs/performance.md, round 11).
const defaultGCPercent = 40

// runtimeSettings are the Go runtime's memory settings of the data plane
// process, as flags. Each flag wins over the runtime's environment variable
// (GOGC, GOMEMLIMIT); without the flag the variable, when set, wins over
// the default, so a Go operator's usual knob keeps working.
type runtimeSettings struct {
	gcPercent   intFlag
	memoryLimit bytesFlag
}

func (r *runtimeSettings) register(fs *flag.FlagSet) {
	r.gcPercent.v = defaultGCPercent
	fs.Var(&r.gcPercent, "gc-percent", "the Go collector's target heap growth in `percent`, as GOGC (-1 turns the collector off); without this flag GOGC, when set, wins over the default")
	fs.Var(&r.memoryLimit, "memory-limit", "soft limit of the Go runtime's memory (heap, stacks, runtime data; not the binary's pages), as GOMEMLIMIT: `bytes` with an optional KiB, MiB or GiB suffix, 0 for none; the collector runs harder near it, and it is no cap: a live heap above it keeps growing. Without this flag GOMEMLIMIT, when set, applies")
}

// apply sets the runtime's settings and reports the ones in effect.
// lookupEnv reads the environment (os.LookupEnv); setGC and setLimit are
// debug.SetGCPercent and debug.SetMemoryLimit.
func (r *runtimeSettings) apply(lookupEnv func(string) (string, bool), setGC func(int) int, setLimit func(int64) int64) (gcPercent int, limit int64) {
	if _, env := lookupEnv("GOGC"); r.gcPercent.set || !env {
		setGC(r.gcPercent.v)
		gcPercent = r.gcPercent.v
	} else {
		// SetGCPercent has no read-only form: swap and restore what
		// GOGC set, before anything runs.
		gcPercent = setGC(100)
		setGC(gcPercent)
	}
	if r.memoryLimit.set {
		setLimit(r.memoryLimit.v)
	}
	return gcPercent, setLimit(-1) // a negative limit reads without changing
}

// applyRuntime is apply on the process's runtime.
func (r *runtimeSettings) applyRuntime() (gcPercent int, limit int64) {
	return r.apply(os.LookupEnv, debug.SetGCPercent, debug.SetMemoryLimit)
}

// intFlag is an int flag that remembers whether it was set (RAUTA_*
// environment defaults set it too).
type intFlag struct {
	v   int
	set bool
}

func (f *intFlag) String() string { return strconv.Itoa(f.v) }

func (f *intFlag) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	f.v, f.set = v, true
	return nil
}

// bytesFlag is a byte count with an optional KiB, MiB or GiB suffix; 0
// means no limit.
type bytesFlag struct {
	v   int64
	set bool
}

func (f *bytesFlag) String() string {
	if !f.set || f.v == math.MaxInt64 {
		return "0"
	}
	return strconv.FormatInt(f.v, 10)
}

func (f *bytesFlag) Set(s string) error {
	v, err := parseBytes(s)
	if err != nil {
		return err
	}
	if v == 0 {
		v = math.MaxInt64 // the runtime's "no limit"
	}
	f.v, f.set = v, true
	return nil
}

func parseBytes(s string) (int64, error) {
	num, unit := s, int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			num, unit = strings.TrimSuffix(s, u.suffix), u.n
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q: want a byte count, optionally with a KiB, MiB or GiB suffix", s)
	}
	return n * unit, nil
}
