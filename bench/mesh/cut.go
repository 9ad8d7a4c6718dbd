package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// hopCut is sockmap's cut of the mesh hop: 1 - mean(hop on) / mean(hop
// off) over the rounds, in percent. A ratio of means, not a mean of
// per-round ratios: a round's hop is a difference of two medians and can
// come near zero, where its ratio explodes. The 95 % interval comes from
// resampling the rounds (percentile bootstrap, fixed seed, so a report's
// numbers give the same interval again).
type hopCut struct {
	cut, low, high float64
	rounds         int
	dropped        int // resamples whose mean hop off was not positive (no cut defined)
}

// cutResamples is the number of bootstrap resamples.
const cutResamples = 4000

func cutOf(on, off []float64) hopCut {
	n := min(len(on), len(off))
	c := hopCut{rounds: n}
	if n < 2 {
		return c
	}
	cut := func(idx func(int) int) (float64, bool) {
		var a, b float64
		for i := range n {
			j := idx(i)
			a += on[j]
			b += off[j]
		}
		if b <= 0 {
			return 0, false
		}
		return 100 * (1 - a/b), true
	}
	var ok bool
	if c.cut, ok = cut(func(i int) int { return i }); !ok {
		c.rounds = 0
		return c
	}
	rng := rand.New(rand.NewPCG(1, 2))
	samples := make([]float64, 0, cutResamples)
	for range cutResamples {
		if v, ok := cut(func(int) int { return rng.IntN(n) }); ok {
			samples = append(samples, v)
		} else {
			c.dropped++
		}
	}
	slices.Sort(samples)
	if len(samples) > 0 {
		c.low = samples[int(0.025*float64(len(samples)))]
		c.high = samples[min(len(samples)-1, int(0.975*float64(len(samples))))]
	}
	return c
}

// goal reads the cut against a target percentage: met when the whole
// interval is at or above it, missed when all of it is below.
func (c hopCut) goal(target float64) string {
	switch {
	case c.rounds < 2 || c.dropped > cutResamples/40:
		return "not measurable (the hop without sockmap is not above zero often enough)"
	case c.low >= target:
		return "met"
	case c.high < target:
		return "missed"
	default:
		return "not shown (the interval spans it)"
	}
}

func (c hopCut) String() string {
	if c.rounds < 2 {
		return "-"
	}
	return fmt.Sprintf("%+.0f%% (95%% CI %+.0f%% to %+.0f%%, %d rounds)", c.cut, c.low, c.high, c.rounds)
}
