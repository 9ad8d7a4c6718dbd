package main

import "github.com/false-systems/rauta/bench/internal/verdict"

// estimate is a paired-ratio estimate (bench/internal/verdict), shared with
// the other benchmarks that compare by pairs.
type estimate = verdict.Estimate

func estimateOf(ratios []float64) estimate { return verdict.Of(ratios) }
