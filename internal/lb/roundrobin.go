package lb

import (
	"math/rand/v2"
	"sync/atomic"
)

// roundRobin hands out endpoints in turn, passing over ejected ones.
type roundRobin struct {
	set
	next atomic.Uint64
}

func newRoundRobin(eps []*Endpoint, h *health) *roundRobin {
	b := &roundRobin{set: newSet(eps, h)}
	// Start at a random place so that after a reload every route does not
	// send its next request to the same first endpoint.
	b.next.Store(rand.Uint64())
	return b
}

func (b *roundRobin) Pick(uint64) *Endpoint {
	n := uint64(len(b.eps))
	if n == 0 {
		return nil
	}
	if e := b.eps[b.next.Add(1)%n]; b.h.usable(e) {
		return e
	}
	// Each endpoint passed over takes a turn of the counter, so the usable
	// ones share the ejected one's turns evenly.
	for range n - 1 {
		if e := b.eps[b.next.Add(1)%n]; b.h.usable(e) {
			return e
		}
	}
	// None usable: panic mode. The loop took n turns, so one more keeps
	// the endpoints taking turns.
	return b.eps[b.next.Add(1)%n]
}

func (b *roundRobin) Retry(_ uint64, failed *Endpoint) *Endpoint {
	if len(b.eps) == 0 {
		return nil
	}
	// The next turn, without taking it: a retry does not shift the turns
	// of the requests that follow.
	return b.usableFrom(b.next.Load()+1, failed)
}
