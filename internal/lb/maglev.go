package lb

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// DefaultMaglevTableSize is the lookup table size New uses for Maglev: the
// prime the Maglev paper uses, about a hundred slots per endpoint for
// backends of up to 655 endpoints.
const DefaultMaglevTableSize = 65537

// maxMaglevTableSize bounds the table (4 bytes a slot) so a bad size cannot
// allocate without limit.
const maxMaglevTableSize = 1 << 24

// seeds of the two independent hashes that give each endpoint its offset and
// skip; fixed so every replica builds the same table.
const (
	offsetSeed = 0
	skipSeed   = 0x9e3779b97f4a7c15
)

const emptySlot = ^uint32(0)

// Maglev is consistent hashing as described in "Maglev: A Fast and Reliable
// Software Network Load Balancer" (Eisenbud et al., NSDI 2016): a lookup table
// of prime size in which every endpoint owns a share of slots proportional to
// its weight, filled so that adding or removing one endpoint moves few keys.
// The table is built once by NewMaglev; Pick is one modulo and two loads.
//
// A key whose slot belongs to an ejected endpoint falls through to the next
// slots of the table until one belongs to a usable endpoint, so keys of
// usable endpoints never move, and an ejected endpoint's keys spread over
// the others in proportion to their slots, each key to the same one every
// time.
type Maglev struct {
	set            // eps sorted by Addr
	table []uint32 // slot -> index into eps; nil when there are no endpoints
	size  uint64
}

// maxFallThrough bounds the slots Pick walks past ejected endpoints before
// it scans the endpoint list instead: with at most half of the endpoints
// ejected, 32 ejected slots in a row are about as likely as 32 heads in a
// row, so the bound only matters when nearly all are out.
const maxFallThrough = 32

// NewMaglev builds the lookup table for eps. weights is nil (all equal) or one
// per endpoint; a weight of 0 counts as 1. tableSize must be a prime of at
// least len(eps); much larger (about 100 times) balances better. The table
// depends only on the set of addresses and weights, not on their order, so
// every replica given the same endpoints routes a key the same way.
func NewMaglev(eps []*Endpoint, weights []uint32, tableSize uint64) (*Maglev, error) {
	if weights != nil && len(weights) != len(eps) {
		return nil, fmt.Errorf("maglev: %d weights for %d endpoints", len(weights), len(eps))
	}
	if tableSize > maxMaglevTableSize {
		return nil, fmt.Errorf("maglev: table size %d above the limit of %d", tableSize, maxMaglevTableSize)
	}
	if !isPrime(tableSize) {
		return nil, fmt.Errorf("maglev: table size %d is not prime", tableSize)
	}
	if tableSize < uint64(len(eps)) {
		return nil, fmt.Errorf("maglev: table size %d smaller than the %d endpoints", tableSize, len(eps))
	}

	type entry struct {
		ep     *Endpoint
		weight uint64
	}
	entries := make([]entry, len(eps))
	for i, e := range eps {
		if e == nil {
			return nil, fmt.Errorf("maglev: endpoint %d is nil", i)
		}
		w := uint64(1)
		if weights != nil && weights[i] > 0 {
			w = uint64(weights[i])
		}
		entries[i] = entry{ep: e, weight: w}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.ep.Addr, b.ep.Addr) })
	for i := 1; i < len(entries); i++ {
		if entries[i].ep.Addr == entries[i-1].ep.Addr {
			return nil, errors.New("maglev: endpoint " + entries[i].ep.Addr + " listed twice")
		}
	}

	m := &Maglev{set: newSet(make([]*Endpoint, len(entries)), nil), size: tableSize}
	ws := make([]uint64, len(entries))
	for i, en := range entries {
		m.eps[i] = en.ep
		ws[i] = en.weight
	}
	if len(entries) > 0 {
		m.table = populate(m.eps, ws, tableSize)
	}
	return m, nil
}

// populate fills the table as in the paper's Pseudocode 1: endpoints take
// turns claiming the next free slot of their own permutation of the table,
// (offset + j*skip) mod size. Weights follow Envoy's scheme: an endpoint takes
// a turn in round r only while r*weight has reached its running target, which
// grows by the largest weight each turn, so turns (and slots) are
// proportional to weight and the heaviest endpoint takes a turn every round.
func populate(eps []*Endpoint, weights []uint64, size uint64) []uint32 {
	n := len(eps)
	maxW := slices.Max(weights)
	pos := make([]uint64, n)  // current slot of each permutation
	skip := make([]uint64, n) // its stride
	target := make([]uint64, n)
	for i, e := range eps {
		pos[i] = xxh64(e.Addr, offsetSeed) % size
		skip[i] = xxh64(e.Addr, skipSeed)%(size-1) + 1
	}

	table := make([]uint32, size)
	for i := range table {
		table[i] = emptySlot
	}
	filled := uint64(0)
	for round := uint64(0); ; round++ {
		for i := range n {
			if round*weights[i] < target[i] {
				continue
			}
			target[i] += maxW
			// skip is in [1, size-1] and size is prime, so the walk visits
			// every slot and finds a free one while any is left.
			c := pos[i]
			for table[c] != emptySlot {
				c = advance(c, skip[i], size)
			}
			table[c] = uint32(i)
			pos[i] = advance(c, skip[i], size)
			filled++
			if filled == size {
				return table
			}
		}
	}
}

func advance(c, skip, size uint64) uint64 {
	c += skip
	if c >= size {
		c -= size
	}
	return c
}

// Pick returns the endpoint owning key's slot, or nil when there are none.
// When that endpoint is ejected, the key falls through to the next slot
// with a usable one; when none is usable, the slot's owner (panic mode).
func (m *Maglev) Pick(key uint64) *Endpoint {
	if m.table == nil {
		return nil
	}
	s := key % m.size
	e := m.eps[m.table[s]]
	if m.h.usable(e) {
		return e
	}
	if u := m.fallThrough(s, nil); u != nil {
		return u
	}
	return e
}

// Retry returns the endpoint key falls through to past failed (and any
// ejected one), or nil when no other is usable.
func (m *Maglev) Retry(key uint64, failed *Endpoint) *Endpoint {
	if m.table == nil {
		return nil
	}
	s := key % m.size
	if e := m.eps[m.table[s]]; e != failed && m.h.usable(e) {
		return e
	}
	return m.fallThrough(s, failed)
}

// fallThrough walks the slots after s for a usable endpoint other than
// not; after maxFallThrough slots it takes the first usable endpoint of the
// list from a place the slot fixes, so a key still lands on one endpoint.
func (m *Maglev) fallThrough(s uint64, not *Endpoint) *Endpoint {
	c := s
	for range maxFallThrough {
		if c++; c == m.size {
			c = 0
		}
		if e := m.eps[m.table[c]]; e != not && m.h.usable(e) {
			return e
		}
	}
	return m.usableFrom(uint64(m.table[s]), not)
}

// maglevTableSizeFor is DefaultMaglevTableSize, or the smallest prime giving
// at least 100 slots per endpoint when that is larger, within the size limit.
func maglevTableSizeFor(n int) uint64 {
	want := uint64(n) * 100
	if want <= DefaultMaglevTableSize {
		return DefaultMaglevTableSize
	}
	if want >= maxMaglevTableSize {
		p := uint64(maxMaglevTableSize)
		for !isPrime(p) {
			p--
		}
		return p
	}
	p := want
	for !isPrime(p) {
		p++
	}
	return p
}

// isPrime is exact for every uint64 (ProbablyPrime is Baillie-PSW below 2^64).
func isPrime(n uint64) bool {
	return new(big.Int).SetUint64(n).ProbablyPrime(0)
}
