package detect

import (
	"math"
	"math/big"
	"testing"
)

// exactTails returns P(X >= k) for k = 0..n+1, computed with big
// rationals: the reference the floating-point sums are checked against.
func exactTails(n int, p *big.Rat) []float64 {
	q := new(big.Rat).Sub(big.NewRat(1, 1), p)
	odds := new(big.Rat).Quo(p, q)
	pmf := make([]*big.Rat, n+1)
	pmf[0] = big.NewRat(1, 1)
	for range n {
		pmf[0].Mul(pmf[0], q)
	}
	for j := range n {
		r := new(big.Rat).Mul(pmf[j], big.NewRat(int64(n-j), int64(j+1)))
		pmf[j+1] = r.Mul(r, odds)
	}
	out := make([]float64, n+2)
	sum := new(big.Rat)
	for k := n; k >= 0; k-- {
		sum.Add(sum, pmf[k])
		out[k], _ = sum.Float64()
	}
	return out
}

func TestBinomialTailMatchesExactSums(t *testing.T) {
	for _, n := range []int{1, 2, 10, 50, 200} {
		for _, p := range []*big.Rat{big.NewRat(1, 100), big.NewRat(1, 20), big.NewRat(1, 2), big.NewRat(9, 10)} {
			pf, _ := p.Float64()
			tails := exactTails(n, p)
			for k := 0; k <= n+1; k++ {
				want := tails[k]
				got := binomialTail(n, k, pf)
				// Relative accuracy in the tail; absolute near 1, where
				// 1 - sum cancels.
				if d := math.Abs(got - want); d > 1e-12 && d > 1e-9*want {
					t.Errorf("n=%d p=%v k=%d: %g, exact %g", n, pf, k, got, want)
				}
			}
		}
	}
}

func TestBinomialTailLargeN(t *testing.T) {
	// 280,000 requests (28k/s in a 10 s window) at 1%: the mean is 2,800
	// and the standard deviation ~52.6. 3,000 errors is 3.8 sigma:
	// normal approximation ~7e-5; the exact value is a little above it.
	got := binomialTail(280_000, 3_000, 0.01)
	if got < 5e-5 || got > 1.5e-4 {
		t.Fatalf("tail at 3.8 sigma: %g", got)
	}
	if got := binomialTail(280_000, 2_800, 0.01); got < 0.45 || got > 0.55 {
		t.Fatalf("tail at the mean: %g", got)
	}
	if got := binomialTail(280_000, 10_000, 0.01); got != 0 && got > 1e-300 {
		t.Fatalf("far tail: %g", got)
	}
}

func TestWilsonUpper(t *testing.T) {
	// Reference values from the closed form (z = 1.96).
	cases := []struct {
		x, n int
		want float64
	}{
		{0, 50, 0.0713},
		{1, 100, 0.0545},
		{30, 3000, 0.0143},
	}
	for _, c := range cases {
		if got := wilsonUpper(c.x, c.n, 1.96); math.Abs(got-c.want) > 5e-4 {
			t.Errorf("wilsonUpper(%d, %d) = %.4f, want %.4f", c.x, c.n, got, c.want)
		}
	}
	if wilsonUpper(0, 0, 1.96) != 1 {
		t.Error("no trials must give no bound")
	}
}
