// Package detect holds the processors that run on paired exchanges: slow
// responses against a per-route p99 baseline, error-rate spikes (5xx,
// resets, timeouts) against a rolling baseline, and failing kubelet probes. Each emits an Event.
package detect

import (
	"time"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// Observation is a paired exchange with its enrichment and route template.
type Observation struct {
	*pair.Exchange
	Time      time.Time // wall-clock time of the exchange's end
	Service   string    // bounded: enrichment, else "ip:port" of the server
	Namespace string
	Pod       string
	Route     string // template with per-service cardinality limit
	// Process is the command name of Exchange.PID (plaintext from inside
	// TLS), "" when not known.
	Process string
	// ProcessPod and ProcessNamespace name the pod that process runs in
	// (by its cgroup), "" when not in a pod the enrichment knows. They
	// say who read and wrote the plaintext (a client or the server);
	// Pod and Namespace are the server address's.
	ProcessPod, ProcessNamespace string
}

// Event kinds.
const (
	KindSlowResponse = "slow_response"
	KindErrorSpike   = "error_spike"
	KindProbeFailure = "probe_failure"
)

// Event is what processors emit; it is written as JSON and exported over
// OTLP logs.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Service   string    `json:"service"`
	Namespace string    `json:"namespace,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Method    string    `json:"method,omitempty"`
	Route     string    `json:"route,omitempty"`
	Status    int       `json:"status,omitempty"`
	Outcome   string    `json:"outcome"`
	LatencyMS float64   `json:"latency_ms"`
	Client    string    `json:"client,omitempty"`
	Server    string    `json:"server,omitempty"`
	// Slow responses: the route's baseline p99, the threshold it gave
	// (max(floor, multiplier x p99)), and how many of the interval's
	// window_requests exchanges were slow when the event was emitted (at
	// most one event per route and interval; LatencyMS is the one that
	// tipped it).
	BaselineP99MS float64 `json:"baseline_p99_ms,omitempty"`
	ThresholdMS   float64 `json:"threshold_ms,omitempty"`
	SlowCount     int     `json:"slow_count,omitempty"`
	// Error spikes: the window's rate and the rolling baseline.
	ErrorRate         float64 `json:"error_rate,omitempty"`
	BaselineErrorRate float64 `json:"baseline_error_rate,omitempty"`
	WindowRequests    int     `json:"window_requests,omitempty"`
	WindowErrors      int     `json:"window_errors,omitempty"`
	// PValue: the probability of the window's count (errors, or slow
	// responses) if the baseline still held; the event needs it below the
	// processor's alpha.
	PValue float64 `json:"p_value,omitempty"`
	// Probe failures: why the probe failed.
	Reason string `json:"reason,omitempty"`
}

// eventFrom fills the fields every event shares.
func eventFrom(kind string, o *Observation) Event {
	return Event{
		Time:      o.Time,
		Kind:      kind,
		Service:   o.Service,
		Namespace: o.Namespace,
		Pod:       o.Pod,
		Method:    o.Method,
		Route:     o.Route,
		Status:    o.Status,
		Outcome:   o.Outcome.String(),
		LatencyMS: float64(o.Latency()) / float64(time.Millisecond),
		Client:    o.Client.String(),
		Server:    o.Server.String(),
	}
}
