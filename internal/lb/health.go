package lb

import (
	"sync"
	"sync/atomic"
	"time"
)

// HealthOptions configure passive health checking (outlier detection) and
// the retry budget of every balancer built from a Registry. The zero value
// is the default; docs/load-balancing.md explains each choice.
type HealthOptions struct {
	// Disable turns ejection off: failing endpoints keep their turns.
	Disable bool
	// BaseEjectionTime is how long an endpoint that failed is left out
	// the first time; each ejection that follows soon after adds as much
	// again, up to MaxEjectionTime. 0 means 30s (Envoy's
	// base_ejection_time).
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps one ejection. 0 means 300s (Envoy's
	// max_ejection_time).
	MaxEjectionTime time.Duration
	// MaxEjectionPercent is the largest share of a backend's endpoints
	// left out at once; one endpoint may always be. 0 means 50: below half
	// the endpoints, Envoy stops trusting health too (its default panic
	// threshold), and the survivors would take more than twice their load.
	MaxEjectionPercent int
	// RetryBudgetPercent bounds the retries in flight to a backend to this
	// share of its requests in flight, so that retries cannot multiply the
	// load on a failing backend. 0 means 20 (Envoy's retry budget).
	RetryBudgetPercent int
	// MinRetryConcurrency is the number of retries in flight always
	// allowed, however few requests there are. 0 means 3 (Envoy's).
	MinRetryConcurrency int
}

func (o HealthOptions) withDefaults() HealthOptions {
	if o.BaseEjectionTime <= 0 {
		o.BaseEjectionTime = 30 * time.Second
	}
	if o.MaxEjectionTime <= 0 {
		o.MaxEjectionTime = 300 * time.Second
	}
	if o.MaxEjectionTime < o.BaseEjectionTime {
		o.MaxEjectionTime = o.BaseEjectionTime
	}
	if o.MaxEjectionPercent <= 0 || o.MaxEjectionPercent > 100 {
		o.MaxEjectionPercent = 50
	}
	if o.RetryBudgetPercent <= 0 || o.RetryBudgetPercent > 100 {
		o.RetryBudgetPercent = 20
	}
	if o.MinRetryConcurrency <= 0 {
		o.MinRetryConcurrency = 3
	}
	return o
}

// health is the options and clock every balancer of a Registry shares.
type health struct {
	opts HealthOptions
	// now is a monotonic clock in nanoseconds; tests replace it.
	now func() int64
}

var clockBase = time.Now()

// monotonic reads the monotonic clock: wall-clock steps do not end or
// stretch an ejection.
func monotonic() int64 { return int64(time.Since(clockBase)) }

func newHealth(o HealthOptions) *health {
	return &health{opts: o.withDefaults(), now: monotonic}
}

// defaultHealth serves balancers built without a Registry.
var defaultHealth = newHealth(HealthOptions{})

// usable reports whether e may be picked: it is not ejected, or its
// ejection has run out (then the next reader takes the fast path again).
func (h *health) usable(e *Endpoint) bool {
	u := e.ejectedUntil.Load()
	if u == 0 {
		return true
	}
	if h.now() < u {
		return false
	}
	e.ejectedUntil.CompareAndSwap(u, 0)
	return true
}

// set is what every balancer shares: its endpoints, the Registry's health
// settings, the lock that keeps ejections within the share, and the
// retries in flight for the retry budget.
type set struct {
	eps      []*Endpoint
	h        *health
	ejectMu  sync.Mutex
	retrying atomic.Int64
}

// Endpoints lists the set's endpoints; callers do not modify the slice.
func (s *set) Endpoints() []*Endpoint { return s.eps }

func newSet(eps []*Endpoint, h *health) set {
	if h == nil {
		h = defaultHealth
	}
	return set{eps: eps, h: h}
}

// Eject leaves e out of every balancer for a back-off period, after it
// failed to connect or reset the connection before any response byte. It
// returns false when e is out already, health checking is off, e is not
// one of the set's endpoints, or the set has its share of endpoints out.
// Repeated ejections grow linearly (Envoy's rule): the n-th ejection in a
// row lasts n times BaseEjectionTime, at most MaxEjectionTime; an endpoint
// that stayed in for MaxEjectionTime starts again from one.
func (s *set) Eject(e *Endpoint) bool {
	o := &s.h.opts
	if o.Disable || e == nil {
		return false
	}
	s.ejectMu.Lock()
	defer s.ejectMu.Unlock()
	out, member := 0, false
	for _, x := range s.eps {
		if x == e {
			member = true
		}
		if !s.h.usable(x) {
			out++
		}
	}
	if !member || !s.h.usable(e) {
		return false
	}
	if limit := max(1, len(s.eps)*o.MaxEjectionPercent/100); out >= limit {
		return false
	}
	now := s.h.now()
	n := e.ejections.Load()
	if last := e.lastEjectedUntil.Load(); last == 0 || now-last > int64(o.MaxEjectionTime) {
		n = 0
	}
	n++
	d := int64(o.BaseEjectionTime) * n
	if d > int64(o.MaxEjectionTime) || d <= 0 {
		d = int64(o.MaxEjectionTime)
		n-- // stop growing once capped
	}
	e.ejections.Store(n)
	e.lastEjectedUntil.Store(now + d)
	e.ejectedUntil.Store(now + d)
	return true
}

// StartRetry takes a place in the retry budget: true when fewer retries
// are in flight than RetryBudgetPercent of the requests in flight to the
// set's endpoints, or than MinRetryConcurrency. Call EndRetry after a
// true.
func (s *set) StartRetry() bool {
	active := int64(0)
	for _, e := range s.eps {
		active += e.Inflight()
	}
	limit := max(int64(s.h.opts.MinRetryConcurrency), active*int64(s.h.opts.RetryBudgetPercent)/100)
	for {
		r := s.retrying.Load()
		if r >= limit {
			return false
		}
		if s.retrying.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// EndRetry gives back a place StartRetry took.
func (s *set) EndRetry() { s.retrying.Add(-1) }

// usableFrom returns the first usable endpoint other than not, looking
// from index i on (wrapping), or nil when there is none.
func (s *set) usableFrom(i uint64, not *Endpoint) *Endpoint {
	n := uint64(len(s.eps))
	for k := range n {
		e := s.eps[(i+k)%n]
		if e != not && s.h.usable(e) {
			return e
		}
	}
	return nil
}
