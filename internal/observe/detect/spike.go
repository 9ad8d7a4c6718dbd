package detect

import (
	"time"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// SpikeConfig configures error-spike detection. Time is cut into windows;
// the baseline is the error rate over the previous BaselineWindows windows.
// Errors are 5xx responses, resets and timeouts.
type SpikeConfig struct {
	Window          time.Duration // default 10s
	BaselineWindows int           // default 30 (five minutes of 10s windows)
	// MinRequests: a window (and the baseline) needs this many requests
	// before a verdict (default 50). Below ~50 one or two errors swing the
	// rate by several percent, which is what made 20 alarm on noise.
	MinRequests int
	// Multiplier and MinRate say how large a jump must be to matter: the
	// window's rate must reach max(MinRate, Multiplier x baseline rate)
	// (defaults 3 and 0.05).
	Multiplier float64
	MinRate    float64
	// Alpha says how unlikely the window must be under the baseline: the
	// binomial probability of at least this many errors in this many
	// requests, at the baseline's upper Wilson bound, must be below Alpha
	// (default 1e-4).
	Alpha       float64
	MaxServices int // default 1024
}

func (c SpikeConfig) withDefaults() SpikeConfig {
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.BaselineWindows <= 0 {
		c.BaselineWindows = 30
	}
	if c.MinRequests <= 0 {
		c.MinRequests = 50
	}
	if c.Multiplier <= 0 {
		c.Multiplier = 3
	}
	if c.MinRate <= 0 {
		c.MinRate = 0.05
	}
	if c.Alpha <= 0 {
		c.Alpha = 1e-4
	}
	if c.MaxServices <= 0 {
		c.MaxServices = 1024
	}
	return c
}

// baselineZ is the z of the Wilson bound put on the baseline rate (95%
// one-sided is 1.645; 1.96 is a little more conservative): the window is
// compared with the highest rate the baseline plausibly has, not with its
// point estimate, so a baseline that happened to be quiet does not turn
// ordinary errors into a spike.
const baselineZ = 1.96

type bucket struct{ total, errors int }

type rateWindow struct {
	start   uint64 // kernel ns of the current window's start
	cur     bucket
	alerted bool
	hist    []bucket // ring of past windows
	next    int
}

// Spike flags services whose error rate jumps above their rolling baseline.
type Spike struct {
	cfg SpikeConfig
	svc map[string]*rateWindow
}

// NewSpike returns the error-spike processor.
func NewSpike(cfg SpikeConfig) *Spike {
	return &Spike{cfg: cfg.withDefaults(), svc: make(map[string]*rateWindow)}
}

// isError: a 5xx (or a gRPC status that means the server failed:
// pair.Exchange.ServerError), or no response at all. A backend that
// resets or hangs fails its clients as surely as one that answers 503.
func isError(o *Observation) bool {
	switch o.Outcome {
	case pair.Reset, pair.Timeout:
		return true
	case pair.Complete:
		return o.ServerError()
	}
	return false
}

// Observe counts the exchange in its window (by kernel end time) and emits
// at most one event per service and window. Requests still pending are
// counted once they end.
func (s *Spike) Observe(o *Observation, emit func(*Event)) {
	if o.Outcome == pair.Pending {
		return
	}
	w := s.svc[o.Service]
	if w == nil {
		if len(s.svc) >= s.cfg.MaxServices {
			return
		}
		w = &rateWindow{start: o.EndNS, hist: make([]bucket, s.cfg.BaselineWindows)}
		s.svc[o.Service] = w
	}
	s.roll(w, o.EndNS)
	w.cur.total++
	isErr := isError(o)
	if isErr {
		w.cur.errors++
	}
	// Judge when an error arrives, and once when the window reaches its
	// minimum (errors that came before it are judged then).
	if w.alerted || w.cur.total < s.cfg.MinRequests || (!isErr && w.cur.total != s.cfg.MinRequests) {
		return
	}
	var base bucket
	for _, b := range w.hist {
		base.total += b.total
		base.errors += b.errors
	}
	if base.total < s.cfg.MinRequests {
		return // no baseline yet
	}
	baseRate := float64(base.errors) / float64(base.total)
	rate := float64(w.cur.errors) / float64(w.cur.total)
	if rate < max(s.cfg.MinRate, s.cfg.Multiplier*baseRate) {
		return
	}
	p := binomialTail(w.cur.total, w.cur.errors, wilsonUpper(base.errors, base.total, baselineZ))
	if p >= s.cfg.Alpha {
		return
	}
	w.alerted = true
	ev := eventFrom(KindErrorSpike, o)
	ev.ErrorRate = rate
	ev.BaselineErrorRate = baseRate
	ev.WindowRequests = w.cur.total
	ev.WindowErrors = w.cur.errors
	ev.PValue = p
	emit(&ev)
}

// roll closes windows that ended before now.
func (s *Spike) roll(w *rateWindow, now uint64) {
	win := uint64(s.cfg.Window)
	if now < w.start+win {
		return
	}
	elapsed := (now - w.start) / win
	for i := uint64(0); i < elapsed && i < uint64(len(w.hist))+1; i++ {
		w.hist[w.next] = w.cur
		w.next = (w.next + 1) % len(w.hist)
		w.cur = bucket{}
	}
	w.start += elapsed * win
	w.alerted = false
}
