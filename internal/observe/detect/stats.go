package detect

import "math"

// binomialTail returns P(X >= k) for X ~ Binomial(n, p), exactly up to
// floating-point rounding. It sums probability mass outward from k on the
// side away from the mode, where the terms shrink geometrically, so a tail
// far from the mean (the case that matters for a verdict) costs a few dozen
// terms even for n in the millions; a k near the mode costs O(sqrt(n)).
func binomialTail(n, k int, p float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lp, lq := math.Log(p), math.Log1p(-p)
	odds := p / (1 - p)
	mode := int(float64(n+1) * p)
	if k > mode {
		// Upper tail: terms fall from k on.
		t := math.Exp(logBinomPMF(n, k, lp, lq))
		sum := t
		for j := k; j < n && t > sum*1e-17; j++ {
			t *= float64(n-j) / float64(j+1) * odds
			sum += t
		}
		return min(sum, 1)
	}
	// k is at or below the mode: 1 - P(X <= k-1), terms fall from k-1 down.
	t := math.Exp(logBinomPMF(n, k-1, lp, lq))
	sum := t
	for j := k - 1; j > 0 && t > sum*1e-17; j-- {
		t *= float64(j) / float64(n-j+1) / odds
		sum += t
	}
	return max(1-sum, 0)
}

// logBinomPMF is log P(X = k) for X ~ Binomial(n, p), with lp = log p and
// lq = log(1-p).
func logBinomPMF(n, k int, lp, lq float64) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c + float64(k)*lp + float64(n-k)*lq
}

// wilsonUpper is the upper end of the Wilson score interval for a
// proportion of x successes in n trials at z standard deviations. Unlike
// x/n it is above zero for x = 0 and accounts for how little a small
// baseline says, so a quiet baseline of a few hundred requests does not
// make the first error look impossible.
func wilsonUpper(x, n int, z float64) float64 {
	if n <= 0 {
		return 1
	}
	fn := float64(n)
	ph := float64(x) / fn
	z2 := z * z
	centre := ph + z2/(2*fn)
	spread := z * math.Sqrt(ph*(1-ph)/fn+z2/(4*fn*fn))
	return min((centre+spread)/(1+z2/fn), 1)
}
