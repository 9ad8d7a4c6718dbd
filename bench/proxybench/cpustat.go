package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes holds the /proc/stat counters of one CPU line ("cpu" for all,
// "cpu0", "cpu1"...): user nice system idle iowait irq softirq steal.
type cpuTimes struct {
	total, idle, steal uint64
}

// readCPUTimes reads every cpu line of /proc/stat.
func readCPUTimes() map[string]cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	return parseCPUTimes(string(b))
}

func parseCPUTimes(s string) map[string]cpuTimes {
	out := map[string]cpuTimes{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var v [8]uint64
		ok := true
		for i := range v {
			x, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				ok = false
				break
			}
			v[i] = x
		}
		if !ok {
			continue
		}
		var t cpuTimes
		for _, x := range v {
			t.total += x
		}
		t.idle = v[3] + v[4]
		t.steal = v[7]
		out[f[0]] = t
	}
	return out
}

// cpuUse is how busy the machine was during one run, in percent of the
// wall time of each CPU: busy includes every process, not only the
// benchmark's, so a neighbour's load shows; steal is time the hypervisor
// gave to other guests.
type cpuUse struct {
	ProxyBusy float64 `json:"proxy_cpu_busy_pct"`
	LoadBusy  float64 `json:"load_cpu_busy_pct"`
	Steal     float64 `json:"steal_pct"`
}

func cpuUseBetween(a, b map[string]cpuTimes, proxyCPU, loadCPU string) cpuUse {
	busy := func(name string) float64 {
		x, y := a[name], b[name]
		d := y.total - x.total
		if d == 0 || y.total < x.total {
			return 0
		}
		return 100 * float64(d-(y.idle-x.idle)-(y.steal-x.steal)) / float64(d)
	}
	var steal float64
	if x, y := a["cpu"], b["cpu"]; y.total > x.total {
		steal = 100 * float64(y.steal-x.steal) / float64(y.total-x.total)
	}
	return cpuUse{ProxyBusy: busy("cpu" + proxyCPU), LoadBusy: busy("cpu" + loadCPU), Steal: steal}
}

func (u cpuUse) String() string {
	return fmt.Sprintf("busy cpu-proxy %3.0f%% cpu-load %3.0f%% steal %2.0f%%", u.ProxyBusy, u.LoadBusy, u.Steal)
}
