package procfs

import (
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 200 18446744073709551615\n"
	st, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stat{Pgrp: 4241, UTime: 250, STime: 75}) {
		t.Errorf("ParseStat = %+v", st)
	}
	if _, err := ParseStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("ParseStat accepted a short line")
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if os.IsNotExist(err) {
		t.Skipf("no /proc (not Linux?): %v", err)
	}
	if err != nil || st.Pgrp <= 0 {
		t.Errorf("ReadStat(self) = %+v, %v", st, err)
	}
}

func TestParseCPUTimes(t *testing.T) {
	lines, err := ParseCPUTimes("cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 10 20 30 40 50 60 70 80 0 0\ncpu1 x 0 0 0 0 0 0 0 0 0\nintr 1 2 3\n")
	if err == nil {
		t.Error("a bad cpu1 line was not reported")
	}
	want := []CPUTimes{
		{Name: "cpu", User: 1, Nice: 2, System: 3, Idle: 4, IOWait: 5, IRQ: 6, SoftIRQ: 7, Steal: 8},
		{Name: "cpu0", User: 10, Nice: 20, System: 30, Idle: 40, IOWait: 50, IRQ: 60, SoftIRQ: 70, Steal: 80},
	}
	if len(lines) != len(want) || lines[0] != want[0] || lines[1] != want[1] {
		t.Fatalf("ParseCPUTimes = %+v, want %+v", lines, want)
	}
	if lines[1].Total() != 360 {
		t.Errorf("Total = %d, want 360", lines[1].Total())
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseStat(b)
		_, _ = ParseCPUTimes(string(b))
	})
}
