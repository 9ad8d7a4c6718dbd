package dataplane

import (
	"flag"
	"io"
	"math"
	"testing"
)

// fakeRuntime records what apply sets, starting from Go's defaults.
type fakeRuntime struct {
	gc, limit         int64
	gcSets, limitSets int
}

// setGC is debug.SetGCPercent: every value sets (negative: collector off).
func (f *fakeRuntime) setGC(v int) int {
	old := int(f.gc)
	f.gc = int64(v)
	f.gcSets++
	return old
}

// setLimit is debug.SetMemoryLimit: a negative value only reads.
func (f *fakeRuntime) setLimit(v int64) int64 {
	old := f.limit
	if v >= 0 {
		f.limit = v
		f.limitSets++
	}
	return old
}

// TestRuntimeSettings: the default GC percent applies unless GOGC is set; a
// flag (or its RAUTA_ variable) wins over GOGC and GOMEMLIMIT; the memory
// limit is only set when given, 0 meaning none.
func TestRuntimeSettings(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		env       map[string]string
		wantGC    int64
		wantLimit int64
		gcSet     bool // whether apply set the GC percent (rather than swap and restore)
	}{
		{"defaults", nil, nil, defaultGCPercent, math.MaxInt64, true},
		{"GOGC wins over the default", nil, map[string]string{"GOGC": "200"}, 100, math.MaxInt64, false},
		{"flag wins over GOGC", []string{"-gc-percent", "30"}, map[string]string{"GOGC": "200"}, 30, math.MaxInt64, true},
		{"memory limit", []string{"-memory-limit", "24MiB"}, nil, defaultGCPercent, 24 << 20, true},
		{"memory limit 0 is none", []string{"-memory-limit", "0"}, map[string]string{"GOMEMLIMIT": "1GiB"}, defaultGCPercent, math.MaxInt64, true},
		{"plain bytes", []string{"-memory-limit", "1000000"}, nil, defaultGCPercent, 1000000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var rt runtimeSettings
			rt.register(fs)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			// The fake starts where the Go runtime would: GOGC read at start
			// (100 here when set, to tell it from the default), no limit.
			f := &fakeRuntime{gc: 100, limit: math.MaxInt64}
			lookup := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
			gc, limit := rt.apply(lookup, f.setGC, f.setLimit)
			if f.gc != c.wantGC || int64(gc) != c.wantGC {
				t.Errorf("GC percent %d (reported %d), want %d", f.gc, gc, c.wantGC)
			}
			if f.limit != c.wantLimit || limit != c.wantLimit {
				t.Errorf("memory limit %d (reported %d), want %d", f.limit, limit, c.wantLimit)
			}
			if set := f.gcSets == 1; set != c.gcSet {
				t.Errorf("GC percent set once: %v (%d calls), want %v", set, f.gcSets, c.gcSet)
			}
		})
	}
}

func TestMemoryLimitFlagRejects(t *testing.T) {
	for _, v := range []string{"", "MiB", "-1", "12MB", "1.5GiB", "9223372036854775807GiB"} {
		var f bytesFlag
		if err := f.Set(v); err == nil {
			t.Errorf("-memory-limit %q accepted as %d", v, f.v)
		}
	}
}
