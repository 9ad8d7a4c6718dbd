package lb

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestMaglevFillsEverySlot(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 100, 1000} {
		m := mustMaglev(t, podEndpoints(n), nil, DefaultMaglevTableSize)
		if uint64(len(m.table)) != DefaultMaglevTableSize {
			t.Fatalf("n=%d: table has %d slots, want %d", n, len(m.table), DefaultMaglevTableSize)
		}
		for s, idx := range m.table {
			if idx == emptySlot || int(idx) >= n {
				t.Fatalf("n=%d: slot %d holds %d", n, s, idx)
			}
		}
	}
}

// A table exactly as large as the endpoint count gives each endpoint one slot.
func TestMaglevSmallestTable(t *testing.T) {
	eps := podEndpoints(7)
	m := mustMaglev(t, eps, nil, 7)
	got := slices.Clone(m.table)
	slices.Sort(got)
	if !slices.Equal(got, []uint32{0, 1, 2, 3, 4, 5, 6}) {
		t.Fatalf("table %v, want each endpoint once", m.table)
	}
}

// Shares of both table slots and real keys follow the weights. Turns are
// handed out exactly by weight, so slots are within 2% of the weight share;
// keys add sampling noise (300k keys, the smallest share ~700 slots), so 3%.
func TestMaglevShareFollowsWeight(t *testing.T) {
	keys := clientKeys(300_000)
	tests := []struct {
		name    string
		n       int
		weights []uint32
	}{
		{"equal 3", 3, nil},
		{"equal 10", 10, nil},
		{"equal 100", 100, nil},
		{"zero means one", 4, []uint32{0, 1, 0, 1}},
		{"1 2 3 4", 4, []uint32{1, 2, 3, 4}},
		{"one heavy", 4, []uint32{1, 1, 1, 10}},
		{"100 to 1", 2, []uint32{100, 1}},
		{"mixed 10", 10, []uint32{5, 1, 2, 8, 3, 3, 1, 9, 4, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := podEndpoints(tt.n)
			m := mustMaglev(t, eps, tt.weights, DefaultMaglevTableSize)
			w := func(i int) float64 {
				if tt.weights == nil || tt.weights[i] == 0 {
					return 1
				}
				return float64(tt.weights[i])
			}
			total := 0.0
			for i := range eps {
				total += w(i)
			}
			slots := map[*Endpoint]int{}
			for _, idx := range m.table {
				slots[m.eps[idx]]++
			}
			picks := map[*Endpoint]int{}
			for _, k := range keys {
				picks[m.Pick(k)]++
			}
			for i, e := range eps {
				want := w(i) / total
				slotShare := float64(slots[e]) / float64(len(m.table))
				keyShare := float64(picks[e]) / float64(len(keys))
				if d := slotShare/want - 1; d > 0.02 || d < -0.02 {
					t.Errorf("%s: slot share %.5f, weight share %.5f", e.Addr, slotShare, want)
				}
				// Key sampling noise is about 1/sqrt(expected keys).
				if d := keyShare/want - 1; d > 0.03+3/math.Sqrt(want*float64(len(keys))) || d < -0.03-3/math.Sqrt(want*float64(len(keys))) {
					t.Errorf("%s: key share %.5f, weight share %.5f", e.Addr, keyShare, want)
				}
			}
		})
	}
}

// Maglev is not minimally disruptive: when an endpoint leaves, the others
// claim its slots in a different order, so a few of their own slots change
// hands too (the paper's Figure 12 trade-off; the effect shrinks as the table
// grows relative to the endpoint count). The bounds hold the worst of the
// measured runs with ~10% headroom: measured worst moved*N is 1.002 (N=3),
// 1.064 (N=10), 1.63 (N=100) at 65537 slots and 1.28 (N=100) at 262139 slots.
// Ideal is 1.0; a naive mod-N hash would move (N-1)/N of all keys.
var disruptionBounds = []struct {
	n     int
	size  uint64
	bound float64 // moved fraction * N
}{
	{3, DefaultMaglevTableSize, 1.05},
	{10, DefaultMaglevTableSize, 1.15},
	{100, DefaultMaglevTableSize, 1.8},
	{100, 262139, 1.4},
}

func TestMaglevRemovalMovesFewKeys(t *testing.T) {
	keys := clientKeys(200_000)
	for _, tt := range disruptionBounds {
		eps := podEndpoints(tt.n)
		before := mustMaglev(t, eps, nil, tt.size)
		for _, r := range []int{0, tt.n / 2, tt.n - 1} {
			removed := eps[r]
			after := mustMaglev(t, without(eps, r), nil, tt.size)
			moved, ofRemoved := 0, 0
			for _, k := range keys {
				b, a := before.Pick(k), after.Pick(k)
				if a == removed {
					t.Fatalf("N=%d: key still maps to removed %s", tt.n, removed.Addr)
				}
				if b == removed {
					ofRemoved++
				}
				if a != b {
					moved++
				}
			}
			if ofRemoved == 0 {
				t.Fatalf("N=%d: no key mapped to %s before removal", tt.n, removed.Addr)
			}
			frac := float64(moved) / float64(len(keys)) * float64(tt.n)
			if frac > tt.bound {
				t.Errorf("N=%d size=%d remove %s: moved %d of %d keys = %.3f/N, bound %.2f/N",
					tt.n, tt.size, removed.Addr, moved, len(keys), frac, tt.bound)
			}
		}
	}
}

// Adding an endpoint is the mirror image: it takes about 1/(N+1) of the keys
// (measured worst moved*(N+1): 1.010, 1.039, 1.61 and 1.28).
func TestMaglevAdditionMovesFewKeys(t *testing.T) {
	keys := clientKeys(200_000)
	for _, tt := range disruptionBounds {
		eps := podEndpoints(tt.n + 3)
		before := mustMaglev(t, eps[:tt.n], nil, tt.size)
		for _, added := range eps[tt.n:] {
			after := mustMaglev(t, append(slices.Clone(eps[:tt.n]), added), nil, tt.size)
			moved, toAdded := 0, 0
			for _, k := range keys {
				b, a := before.Pick(k), after.Pick(k)
				if a == added {
					toAdded++
				}
				if a != b {
					moved++
				}
			}
			n1 := float64(tt.n + 1)
			if share := float64(toAdded) / float64(len(keys)) * n1; share < 0.9 || share > 1.1 {
				t.Errorf("N=%d: added %s got %.3f/(N+1) of keys, want about 1", tt.n, added.Addr, share)
			}
			if frac := float64(moved) / float64(len(keys)) * n1; frac > tt.bound {
				t.Errorf("N=%d size=%d add %s: moved %.3f/(N+1), bound %.2f", tt.n, tt.size, added.Addr, frac, tt.bound)
			}
		}
	}
}

// The table depends on the set of addresses and weights only: the same input
// in any order builds the same table, so every replica routes a key alike.
func TestMaglevDeterministic(t *testing.T) {
	eps := podEndpoints(50)
	weights := make([]uint32, len(eps))
	for i := range weights {
		weights[i] = uint32(i%5 + 1)
	}
	a := mustMaglev(t, eps, weights, DefaultMaglevTableSize)
	b := mustMaglev(t, eps, weights, DefaultMaglevTableSize)
	if !slices.Equal(a.table, b.table) {
		t.Fatal("two builds from the same input differ")
	}

	// Fresh Endpoint values with the same addresses, shuffled with their weights.
	rng := rand.New(rand.NewPCG(1, 2))
	perm := rng.Perm(len(eps))
	eps2 := make([]*Endpoint, len(eps))
	w2 := make([]uint32, len(eps))
	for i, p := range perm {
		eps2[i] = &Endpoint{Addr: eps[p].Addr}
		w2[i] = weights[p]
	}
	c := mustMaglev(t, eps2, w2, DefaultMaglevTableSize)
	for s := range a.table {
		if a.eps[a.table[s]].Addr != c.eps[c.table[s]].Addr {
			t.Fatalf("slot %d: %s vs %s after reordering input", s, a.eps[a.table[s]].Addr, c.eps[c.table[s]].Addr)
		}
	}

}

// With equal weights the table must be exactly the one the paper's
// Pseudocode 1 builds from its explicit permutation[i][j] = (offset + j*skip)
// mod M, which this test computes the slow, literal way.
func TestMaglevMatchesPaperPseudocode(t *testing.T) {
	for _, tc := range []struct {
		n    int
		size uint64
	}{{1, 2}, {3, 3}, {3, 13}, {5, 251}, {10, 1009}, {40, 65537}} {
		eps := podEndpoints(tc.n)
		m := mustMaglev(t, eps, nil, tc.size)
		// m.eps is sorted by address; the reference works on that order.
		want := paperPopulate(m.eps, tc.size)
		if !slices.Equal(m.table, want) {
			t.Errorf("N=%d M=%d: table differs from the paper's algorithm", tc.n, tc.size)
		}
	}
}

func paperPopulate(eps []*Endpoint, M uint64) []uint32 {
	N := len(eps)
	permutation := make([][]uint64, N)
	for i, e := range eps {
		offset := xxh64(e.Addr, offsetSeed) % M
		skip := xxh64(e.Addr, skipSeed)%(M-1) + 1
		permutation[i] = make([]uint64, M)
		for j := range M {
			permutation[i][j] = (offset + j*skip) % M
		}
	}
	next := make([]uint64, N)
	entry := make([]int64, M)
	for j := range entry {
		entry[j] = -1
	}
	var n uint64
	for {
		for i := range N {
			c := permutation[i][next[i]]
			for entry[c] >= 0 {
				next[i]++
				c = permutation[i][next[i]]
			}
			entry[c] = int64(i)
			next[i]++
			n++
			if n == M {
				out := make([]uint32, M)
				for j, v := range entry {
					out[j] = uint32(v)
				}
				return out
			}
		}
	}
}

func TestMaglevErrors(t *testing.T) {
	eps := podEndpoints(3)
	tests := []struct {
		name    string
		eps     []*Endpoint
		weights []uint32
		size    uint64
		want    string
	}{
		{"not prime", eps, nil, 65536, "not prime"},
		{"zero", eps, nil, 0, "not prime"},
		{"one", eps, nil, 1, "not prime"},
		{"too small", eps, nil, 2, "smaller than the 3 endpoints"},
		{"too large", eps, nil, 1<<24 + 43, "above the limit"},
		{"weights mismatch", eps, []uint32{1, 2}, 13, "2 weights for 3 endpoints"},
		{"nil endpoint", []*Endpoint{eps[0], nil}, nil, 13, "endpoint 1 is nil"},
		{"duplicate", []*Endpoint{eps[0], {Addr: eps[0].Addr}}, nil, 13, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMaglev(tt.eps, tt.weights, tt.size)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewMaglev = %v, %v; want error containing %q", m, err, tt.want)
			}
		})
	}
}

func TestMaglevEmpty(t *testing.T) {
	m := mustMaglev(t, nil, nil, DefaultMaglevTableSize)
	for _, k := range []uint64{0, 1, ^uint64(0)} {
		if e := m.Pick(k); e != nil {
			t.Fatalf("Pick(%d) on empty Maglev = %v", k, e)
		}
	}
}

func TestMaglevTableSizeFor(t *testing.T) {
	tests := []struct {
		n    int
		want uint64
	}{
		{0, DefaultMaglevTableSize},
		{655, DefaultMaglevTableSize},
		{656, 65609},   // smallest prime >= 65600
		{1000, 100003}, // smallest prime >= 100000
		{1 << 20, 16777213},
	}
	for _, tt := range tests {
		got := maglevTableSizeFor(tt.n)
		if got != tt.want {
			t.Errorf("maglevTableSizeFor(%d) = %d, want %d", tt.n, got, tt.want)
		}
		if !isPrime(got) {
			t.Errorf("maglevTableSizeFor(%d) = %d is not prime", tt.n, got)
		}
	}
}
