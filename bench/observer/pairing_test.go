package main

import "testing"

func TestPairingCheckCountsWrongStatuses(t *testing.T) {
	var p pairingCheck
	lines := `{"type":"exchange","target":"/s/201/1","status":201}
{"type":"exchange","target":"/s/202/2","status":201}
{"type":"event","target":"/s/203/3","status":200}
{"type":"exchange","target":"/s/20","target_truncated":true,"status":200}
{"type":"exchange","target":"/other","status":200}
{"type":"exchange","target":"/s/203/5","status":203}`
	// Split mid-line: the observer's writes need not end at a newline.
	_, _ = p.Write([]byte(lines[:50]))
	_, _ = p.Write([]byte(lines[50:] + "\n"))
	ex, bad, unknown := p.counts()
	if ex != 5 || bad != 1 || unknown != 2 {
		t.Fatalf("exchanges %d, mis-paired %d, unknown %d; want 5, 1, 2", ex, bad, unknown)
	}
}

func TestStatusOfTarget(t *testing.T) {
	for target, want := range map[string]int{"/s/200/9": 200, "/s/203/12": 203, "/s/x/1": 0, "/s/203": 0, "/": 0, "/s/999/1": 0} {
		if got := statusOfTarget(target); got != want {
			t.Errorf("statusOfTarget(%q) = %d, want %d", target, got, want)
		}
	}
}
