package lb

import (
	"math/rand/v2"
	"sync/atomic"
)

// roundRobin hands out endpoints in turn.
type roundRobin struct {
	eps  []*Endpoint
	next atomic.Uint64
}

func newRoundRobin(eps []*Endpoint) *roundRobin {
	b := &roundRobin{eps: eps}
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
	return b.eps[b.next.Add(1)%n]
}
