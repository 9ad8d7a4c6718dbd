package detect

import (
	"strconv"
	"strings"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// ProbeUserAgentPrefix identifies kubelet HTTP probes.
const ProbeUserAgentPrefix = "kube-probe/"

// Probe flags failing kubelet probes: resets, timeouts, and statuses the
// kubelet counts as failure. The kubelet treats 200-399 as success
// (pkg/probe/http), so 3xx is not a failure here.
type Probe struct{}

// Observe emits a probe_failure event for a failed kubelet probe.
func (Probe) Observe(o *Observation, emit func(*Event)) {
	if o.Outcome == pair.Pending || !strings.HasPrefix(o.UserAgent, ProbeUserAgentPrefix) {
		return
	}
	var reason string
	switch {
	case o.Outcome == pair.Reset:
		reason = "connection reset"
	case o.Outcome == pair.Timeout:
		reason = "no response before timeout"
	case o.Status < 200 || o.Status >= 400:
		reason = "status " + strconv.Itoa(o.Status)
	default:
		return
	}
	ev := eventFrom(KindProbeFailure, o)
	ev.Reason = reason
	emit(&ev)
}
