package main

import (
	"fmt"

	"github.com/false-systems/rauta/bench/internal/procfs"
)

// readCPUTimes reads every cpu line of /proc/stat by name ("cpu" for all,
// "cpu0", "cpu1"...); lines it cannot read are left out.
func readCPUTimes() map[string]procfs.CPUTimes {
	lines, _ := procfs.ReadCPUTimes()
	return cpuTimesByName(lines)
}

func cpuTimesByName(lines []procfs.CPUTimes) map[string]procfs.CPUTimes {
	out := make(map[string]procfs.CPUTimes, len(lines))
	for _, l := range lines {
		out[l.Name] = l
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

func cpuUseBetween(a, b map[string]procfs.CPUTimes, proxyCPU, loadCPU string) cpuUse {
	busy := func(name string) float64 {
		x, y := a[name], b[name]
		d := y.Total() - x.Total()
		if d == 0 || y.Total() < x.Total() {
			return 0
		}
		idle := (y.Idle + y.IOWait) - (x.Idle + x.IOWait)
		return 100 * float64(d-idle-(y.Steal-x.Steal)) / float64(d)
	}
	var steal float64
	if x, y := a["cpu"], b["cpu"]; y.Total() > x.Total() {
		steal = 100 * float64(y.Steal-x.Steal) / float64(y.Total()-x.Total())
	}
	return cpuUse{ProxyBusy: busy("cpu" + proxyCPU), LoadBusy: busy("cpu" + loadCPU), Steal: steal}
}

func (u cpuUse) String() string {
	return fmt.Sprintf("busy cpu-proxy %3.0f%% cpu-load %3.0f%% steal %2.0f%%", u.ProxyBusy, u.LoadBusy, u.Steal)
}
