package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

func printResults(out io.Writer, c config, res results) {
	hold, delay := c.holdOff, c.maxDelay
	if hold == 0 {
		hold = 10 * time.Millisecond // rauta controller's default
	}
	if delay == 0 {
		delay = 500 * time.Millisecond
	}
	fmt.Fprintf(out, "\nrauta controller -hold-off %s -max-delay %s; poll every %s, %s quiet before each timed route\n\n", hold, delay, c.poll, c.gap)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "routes present\tsamples\tp50\tp99\tmax\ttimeouts\tlevel settled in\t")
	for _, l := range res.levels {
		s := sortedCopy(l.samples)
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%d\t%s\t\n", l.present, len(s), ms(percentile(s, 50)), ms(percentile(s, 99)),
			ms(percentile(s, 100)), l.timeouts, l.settle.Round(10*time.Millisecond))
	}
	w.Flush()
	ch := res.churn
	if ch == nil {
		return
	}
	p := sortedCopy(ch.propagation)
	fmt.Fprintf(out, "\nchurn: %d routes added one every %s in %s (%.0f translations applied)\n", ch.added, c.interval, ch.took.Round(10*time.Millisecond), ch.reloads)
	fmt.Fprintf(out, "  new routes:    %d requests, %d failed (not 404-then-200), %d routes never served\n", ch.newRequests, ch.newBad, ch.notReady)
	fmt.Fprintf(out, "  steady routes: %d requests, %d failed (not 200)\n", ch.steadyReqs, ch.steadyBad)
	fmt.Fprintf(out, "  create -> first 200 under churn: p50 %s, p99 %s, max %s\n", ms(percentile(p, 50)), ms(percentile(p, 99)), ms(percentile(p, 100)))
	kinds := make([]string, 0, len(ch.badKinds))
	for k := range ch.badKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(out, "  failed: %s: %d\n", k, ch.badKinds[k])
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
