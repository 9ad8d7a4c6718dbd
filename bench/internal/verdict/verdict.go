// Package verdict turns paired ratios of two contenders (each pair run back
// to back) into an estimate with a 95 % interval and a verdict, the same
// way for every benchmark that compares by pairs.
package verdict

import (
	"fmt"
	"math"
)

// Estimate is the geometric mean of paired ratios with its 95 % confidence
// interval. Ratios are averaged as logarithms so that 0.5 and 2 cancel; the
// interval is Student's t on the logarithms. On a shared 2-core machine
// single pairs range over ±30 %, so "ahead" or "behind" is only claimed
// when the whole interval is on one side of 1.
type Estimate struct {
	Geomean float64 `json:"geomean"`
	Low     float64 `json:"ci95_low"`
	High    float64 `json:"ci95_high"`
}

// Of needs at least two ratios, all positive; otherwise it returns
// the zero estimate, which Verdict calls "too few".
func Of(ratios []float64) Estimate {
	logs := make([]float64, len(ratios))
	for i, r := range ratios {
		if r <= 0 {
			return Estimate{}
		}
		logs[i] = math.Log(r)
	}
	m := MeanOf(logs)
	if m.N < 2 {
		return Estimate{}
	}
	return Estimate{Geomean: math.Exp(m.Mean), Low: math.Exp(m.Low), High: math.Exp(m.High)}
}

// Verdict reads the estimate for a figure where a larger ratio is better
// (req/s) or worse (p99, CPU per request).
func (e Estimate) Verdict(largerIsBetter bool) string {
	above, below := e.Low > 1, e.High < 1
	switch {
	case e.Geomean == 0:
		return "too few pairs"
	case above && largerIsBetter, below && !largerIsBetter:
		return "ahead"
	case above, below:
		return "behind"
	default:
		return "level"
	}
}

func (e Estimate) String() string {
	if e.Geomean == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f (95%% CI %.3f-%.3f)", e.Geomean, e.Low, e.High)
}

// tQuantile975 is the 97.5th percentile of Student's t with df degrees of
// freedom: the two-sided 95 % interval's multiplier.
func tQuantile975(df int) float64 {
	table := [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	switch {
	case df < 1:
		return math.Inf(1)
	case df <= len(table):
		return table[df-1]
	case df <= 60:
		return 2.000 + (2.042-2.000)*float64(60-df)/30 // 2.000 at df 60; close enough between
	default:
		return 1.96
	}
}

// Mean is the arithmetic mean of paired differences (figures that may be
// negative or cross zero, where a ratio's logarithm does not exist) with
// its 95 % confidence interval, Student's t.
type Mean struct {
	Mean float64 `json:"mean"`
	Low  float64 `json:"ci95_low"`
	High float64 `json:"ci95_high"`
	N    int     `json:"n"`
}

// MeanOf needs at least two values; otherwise N is below 2 and String
// says so.
func MeanOf(xs []float64) Mean {
	n := len(xs)
	if n < 2 {
		return Mean{N: n}
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(n)
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	half := tQuantile975(n-1) * math.Sqrt(ss/float64(n-1)/float64(n))
	return Mean{Mean: mean, Low: mean - half, High: mean + half, N: n}
}

// Format formats the mean and interval with format (e.g. "%.0f%%").
func (m Mean) Format(format string) string {
	if m.N < 2 {
		return "too few pairs"
	}
	return fmt.Sprintf(format+" (95%% CI "+format+" to "+format+")", m.Mean, m.Low, m.High)
}
