package procgroup

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestStatusKB(t *testing.T) {
	b := []byte("Name:\tnginx\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n")
	if kb, ok := StatusKB(b, "VmHWM:"); !ok || kb != 12345 {
		t.Errorf("StatusKB(VmHWM) = %d, %v; want 12345, true", kb, ok)
	}
	if kb, ok := StatusKB(b, "VmRSS:"); !ok || kb != 100 {
		t.Errorf("StatusKB(VmRSS) = %d, %v; want 100, true", kb, ok)
	}
	if _, ok := StatusKB(b, "VmSwap:"); ok {
		t.Error("StatusKB found a key that is not there")
	}
}

func TestSelfGroup(t *testing.T) {
	// The test process's own group is found and has memory and CPU time.
	pgid, err := syscall.Getpgid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(GroupPIDs(pgid)) == 0 {
		t.Fatalf("GroupPIDs(%d) found nothing", pgid)
	}
	if RSSBytes(pgid) == 0 || PeakRSSBytes(pgid) == 0 {
		t.Error("RSS of the test's own group is 0")
	}
}

// TestStartStopGroup: Stop ends the whole group, a child the started
// process forked included, and StopAll forgets what Stop ended.
func TestStartStopGroup(t *testing.T) {
	s := NewSet()
	defer s.StopAll()
	p, err := s.Start("sh", []string{"sh", "-c", "sleep 60 & exec sleep 60"}, nil, t.TempDir()+"/log")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; len(GroupPIDs(p.PGID())) < 2; i++ {
		if i == 100 {
			t.Fatalf("group %d has %d processes, want 2", p.PGID(), len(GroupPIDs(p.PGID())))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if done, _ := p.Exited(); done {
		t.Fatal("exited before Stop")
	}
	s.Stop(p, 2*time.Second)
	if done, _ := p.Exited(); !done {
		t.Fatal("not exited after Stop")
	}
	// The forked sleep is reaped by whoever inherited it, soon after.
	for i := 0; len(GroupPIDs(p.PGID())) != 0; i++ {
		if i == 250 {
			t.Fatalf("%d processes of the group left after Stop", len(GroupPIDs(p.PGID())))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
