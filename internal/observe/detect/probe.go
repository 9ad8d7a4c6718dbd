package detect

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// ProbeUserAgentPrefix identifies kubelet HTTP probes.
const ProbeUserAgentPrefix = "kube-probe/"

// ProbeConfig configures probe-failure detection.
type ProbeConfig struct {
	// Timeout is the kubelet's probe timeout when nothing better is known
	// (default 1s, the kubelet's timeoutSeconds default).
	Timeout time.Duration
	// TimeoutOf, when set, returns the probe's own timeout (the pod's
	// probe spec) for a server address and request target.
	TimeoutOf func(server netip.AddrPort, target string) (time.Duration, bool)
	// MaxProbers bounds the remembered (kubelet address, server) pairs
	// that let a refused connection be recognised as a probe (default
	// 4096; cleared when full).
	MaxProbers int
}

func (c ProbeConfig) withDefaults() ProbeConfig {
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.MaxProbers <= 0 {
		c.MaxProbers = 4096
	}
	return c
}

type proberKey struct {
	client netip.Addr
	server netip.AddrPort
}

type proberInfo struct {
	method, target, ua, route string
	refusedAt                 uint64 // kernel ns of the last refusal reported
}

// refusedDedup: a refusal seen again within this long (the same RST at
// several hooks) is the same refusal; the kubelet probes at most once a
// second.
const refusedDedup = uint64(500 * time.Millisecond)

// Probe flags failing kubelet probes: resets, refused connections, no
// answer within the probe's timeout (reported when the timeout passes, by
// the pairer's sweep), answers after it, and statuses the kubelet counts as
// failure. The kubelet treats 200-399 as success (pkg/probe/http), so 3xx
// is not a failure here.
type Probe struct {
	cfg     ProbeConfig
	probers map[proberKey]proberInfo
}

// NewProbe returns the probe-failure processor.
func NewProbe(cfg ProbeConfig) *Probe {
	return &Probe{cfg: cfg.withDefaults(), probers: make(map[proberKey]proberInfo)}
}

func (p *Probe) timeout(o *Observation) time.Duration {
	if p.cfg.TimeoutOf != nil {
		if d, ok := p.cfg.TimeoutOf(o.Server, o.Target); ok && d > 0 {
			return d
		}
	}
	return p.cfg.Timeout
}

// Observe emits a probe_failure event for a failed kubelet probe, once per
// request.
func (p *Probe) Observe(o *Observation, emit func(*Event)) {
	if !strings.HasPrefix(o.UserAgent, ProbeUserAgentPrefix) {
		return
	}
	p.remember(o)
	if o.Marks&markProbe != 0 {
		return // reported while it was pending
	}
	timeout := p.timeout(o)
	var reason string
	switch {
	case o.Outcome == pair.Pending:
		if o.Latency() < timeout {
			return
		}
		o.Marks |= markProbe
		reason = "no response within the probe timeout (" + timeout.String() + ")"
	case o.Outcome == pair.Reset:
		reason = "connection reset"
	case o.Outcome == pair.Timeout:
		reason = "no response before timeout"
	case o.Status < 200 || o.Status >= 400:
		reason = "status " + strconv.Itoa(o.Status)
	case o.Latency() > timeout:
		// The kubelet gave up before this answer came.
		reason = "answered after the probe timeout (" + timeout.String() + ")"
	default:
		return
	}
	ev := eventFrom(KindProbeFailure, o)
	ev.Reason = reason
	emit(&ev)
}

// remember notes who probes which server, so that a refused connection
// between them can be named a probe failure.
func (p *Probe) remember(o *Observation) {
	k := proberKey{o.Client.Addr(), o.Server}
	if old, ok := p.probers[k]; ok && old.target == o.Target && old.ua == o.UserAgent && old.route == o.Route {
		return
	}
	if len(p.probers) >= p.cfg.MaxProbers {
		clear(p.probers)
	}
	p.probers[k] = proberInfo{method: o.Method, target: o.Target, ua: o.UserAgent, route: o.Route}
}

// Refused reports a refused connection (the server answered a SYN with a
// RST) from client to server at kernel time ts. It is a probe failure when
// that client has probed that server before; o describes the refused
// exchange (Server, Client, EndNS and enrichment filled in by the caller)
// and gets the remembered probe's method, target, route and User-Agent. The
// kernel program sees no SYN, so a server that refused its very first
// probe is not recognised.
func (p *Probe) Refused(o *Observation, emit func(*Event)) {
	k := proberKey{o.Client.Addr(), o.Server}
	info, ok := p.probers[k]
	if !ok {
		return
	}
	if info.refusedAt != 0 && o.EndNS >= info.refusedAt && o.EndNS-info.refusedAt < refusedDedup {
		return
	}
	info.refusedAt = o.EndNS
	p.probers[k] = info
	o.Method, o.Target, o.UserAgent, o.Route = info.method, info.target, info.ua, info.route
	ev := eventFrom(KindProbeFailure, o)
	ev.Outcome = "refused"
	ev.Reason = "connection refused"
	emit(&ev)
}
