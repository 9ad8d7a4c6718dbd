package lb

import "math/rand/v2"

// leastRequest is the power of two choices: sample two distinct endpoints at
// random and take the one with fewer requests in flight. It avoids both the
// herd effect of always choosing the global minimum from stale counts and the
// O(n) scan that would need. Ejected endpoints lose the comparison.
type leastRequest struct {
	set
}

func newLeastRequest(eps []*Endpoint, h *health) *leastRequest {
	return &leastRequest{set: newSet(eps, h)}
}

func (b *leastRequest) Pick(uint64) *Endpoint {
	n := uint64(len(b.eps))
	switch n {
	case 0:
		return nil
	case 1:
		return b.eps[0]
	}
	// One runtime random number (lock-free, per-thread state) yields both
	// indexes by Lemire's multiply-shift reduction of each 32-bit half.
	r := rand.Uint64()
	i := ((r >> 32) * n) >> 32
	j := ((r & 0xffffffff) * (n - 1)) >> 32
	if j >= i {
		j++ // distinct from i, still uniform over the others
	}
	a, c := b.eps[i], b.eps[j]
	switch ua, uc := b.h.usable(a), b.h.usable(c); {
	case ua && uc:
		if c.Inflight() < a.Inflight() {
			return c
		}
		return a
	case ua:
		return a
	case uc:
		return c
	}
	if e := b.usableFrom(i, nil); e != nil {
		return e
	}
	return a // none usable: panic mode
}

func (b *leastRequest) Retry(_ uint64, failed *Endpoint) *Endpoint {
	if len(b.eps) == 0 {
		return nil
	}
	return b.usableFrom(rand.Uint64N(uint64(len(b.eps))), failed)
}
