package detect

import "time"

// SpikeConfig configures 5xx spike detection. Time is cut into windows;
// the baseline is the 5xx rate over the previous BaselineWindows windows.
type SpikeConfig struct {
	Window          time.Duration // default 10s
	BaselineWindows int           // default 30 (five minutes of 10s windows)
	// MinRequests: a window (and the baseline) needs this many requests
	// before a verdict (default 20).
	MinRequests int
	// Multiplier and MinRate: a spike is a window rate >= max(MinRate,
	// Multiplier x baseline rate) (defaults 3 and 0.05).
	Multiplier  float64
	MinRate     float64
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
		c.MinRequests = 20
	}
	if c.Multiplier <= 0 {
		c.Multiplier = 3
	}
	if c.MinRate <= 0 {
		c.MinRate = 0.05
	}
	if c.MaxServices <= 0 {
		c.MaxServices = 1024
	}
	return c
}

type bucket struct{ total, errors int }

type rateWindow struct {
	start   uint64 // kernel ns of the current window's start
	cur     bucket
	alerted bool
	hist    []bucket // ring of past windows
	next    int
}

// Spike flags services whose 5xx rate jumps above their rolling baseline.
type Spike struct {
	cfg SpikeConfig
	svc map[string]*rateWindow
}

// NewSpike returns the 5xx spike processor.
func NewSpike(cfg SpikeConfig) *Spike {
	return &Spike{cfg: cfg.withDefaults(), svc: make(map[string]*rateWindow)}
}

// Observe counts the exchange in its window (by kernel end time) and emits
// at most one event per service and window.
func (s *Spike) Observe(o *Observation, emit func(*Event)) {
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
	isErr := o.Status >= 500
	if !isErr {
		return
	}
	w.cur.errors++
	if w.alerted || w.cur.total < s.cfg.MinRequests {
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
	if rate >= max(s.cfg.MinRate, s.cfg.Multiplier*baseRate) {
		w.alerted = true
		ev := eventFrom(KindErrorSpike, o)
		ev.ErrorRate = rate
		ev.BaselineErrorRate = baseRate
		ev.WindowRequests = w.cur.total
		emit(&ev)
	}
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
