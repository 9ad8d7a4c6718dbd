package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// compare pools the samples of earlier runs (their -out files) and returns
// RAUTA's paired ratios over all of them, cell by cell. A difference of a
// few percent needs more pairs than one run makes; this is how the
// verdicts in docs/performance.md are computed.
func compare(paths []string) (string, error) {
	pooled := &report{Groups: map[string]string{}}
	have := map[string]bool{}
	base := 0 // repeats of each file are renumbered past the previous file's
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		var r report
		if err := json.Unmarshal(raw, &r); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if len(r.Samples) == 0 && len(r.IdleSamples) == 0 {
			return "", fmt.Errorf("%s: no samples", path)
		}
		for _, c := range r.Cells {
			if !slices.Contains(pooled.Cells, c) {
				pooled.Cells = append(pooled.Cells, c)
			}
		}
		for _, c := range r.IdleCells {
			if !slices.Contains(pooled.IdleCells, c) {
				pooled.IdleCells = append(pooled.IdleCells, c)
			}
		}
		for c, g := range r.Groups {
			pooled.Groups[c] = g
		}
		for _, c := range r.Contenders {
			if !have[c.Name] {
				have[c.Name] = true
				pooled.Contenders = append(pooled.Contenders, &contender{Name: c.Name})
			}
		}
		last := 0
		for _, s := range r.Samples {
			last = max(last, s.Repeat)
			s.Repeat += base
			pooled.add(s)
		}
		for _, s := range r.IdleSamples {
			last = max(last, s.Repeat)
			s.Repeat += base
			pooled.addIdle(s)
		}
		base += last + 1
	}
	pooled.Paired = pooled.pairs("rauta")
	pooled.IdlePaired = pooled.idlePairs("rauta")
	var b strings.Builder
	fmt.Fprintf(&b, "RAUTA paired with every other contender, same cell and repeat, pooled over %d file(s): %s\n",
		len(paths), strings.Join(paths, " "))
	for _, c := range pooled.Cells {
		fmt.Fprintf(&b, "\n%s\n", c)
		pooled.pairedLines(&b, c)
	}
	for _, p := range pooled.IdlePaired {
		fmt.Fprintf(&b, "\n%s\n  rauta / %-8s %d pairs: KiB per connection %s, geometric mean %s %s\n", p.Cell, p.Other, p.Pairs, ratios(p.KiB), p.KiBEst, p.KiBEst.Verdict(false))
	}
	return b.String(), nil
}
