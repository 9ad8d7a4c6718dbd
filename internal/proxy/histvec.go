package proxy

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// pairVec is two histogram families with the same labels, kept compactly:
// a series is its label values and one array of counters for both
// histograms. client_golang's HistogramVec keeps about 3 KB per series
// (the histogram's hot and cold counts, its label pairs built for every
// scrape to reuse, the vector's hash map); a data plane whose 10,000
// routes had each served a request held 80 MB of it, 80 % of its heap,
// and the garbage collector marked it all on every cycle
// (docs/performance.md, round 19). A pairSeries is about 600 bytes; the
// label pairs are built at scrape time instead.
//
// The exposition is the same as two HistogramVecs': names, help, labels
// and buckets, with _count equal to the +Inf bucket.
type pairVec struct {
	desc   [2]*prometheus.Desc
	bounds [2][]float64 // upper bounds, ascending, +Inf left out
	labels int          // label values per series

	mu     sync.Mutex
	series map[string]*pairSeries // by label values joined with labelSep
}

// labelSep joins label values into a series' key: it cannot occur in a
// valid UTF-8 label value.
const labelSep = "\xff"

// pairSeries is one series of both histograms. counts holds, for each
// histogram in turn, its non-cumulative bucket counts (the last one past
// every bound: +Inf) and the bits of its float64 sum.
type pairSeries struct {
	labels []string
	counts []atomic.Uint64
	// off is where the second histogram's counts start.
	off int
}

func newPairVec(a, b prometheus.HistogramOpts, labels []string) *pairVec {
	v := &pairVec{labels: len(labels), series: make(map[string]*pairSeries)}
	for i, o := range [2]prometheus.HistogramOpts{a, b} {
		v.desc[i] = prometheus.NewDesc(o.Name, o.Help, labels, nil)
		v.bounds[i] = o.Buckets
	}
	return v
}

// get returns the series of the label values, creating it. The values are
// kept; callers pass a slice they do not reuse.
func (v *pairVec) get(labels []string) *pairSeries {
	if len(labels) != v.labels {
		panic("proxy: pairVec label count") // a programming error, as in client_golang
	}
	k := strings.Join(labels, labelSep)
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.series[k]
	if s == nil {
		n0 := len(v.bounds[0]) + 2 // buckets, +Inf, sum
		s = &pairSeries{labels: labels, counts: make([]atomic.Uint64, n0+len(v.bounds[1])+2), off: n0}
		v.series[k] = s
	}
	return s
}

// deleteMatching deletes the series whose label values gone says are.
func (v *pairVec) deleteMatching(gone func(labels []string) bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, s := range v.series {
		if gone(s.labels) {
			delete(v.series, k)
		}
	}
}

// delete deletes the series of exactly these label values.
func (v *pairVec) delete(labels []string) {
	v.mu.Lock()
	delete(v.series, strings.Join(labels, labelSep))
	v.mu.Unlock()
}

// observe adds x to histogram h (0 or 1) of s.
func (v *pairVec) observe(s *pairSeries, h int, x float64) {
	bounds, c := v.bounds[h], s.counts[h*s.off:]
	i := 0
	for i < len(bounds) && x > bounds[i] { // few buckets: linear, as client_golang below 35
		i++
	}
	c[i].Add(1)
	sum := &c[len(bounds)+1]
	for {
		old := sum.Load()
		if sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+x)) {
			return
		}
	}
}

func (v *pairVec) Describe(ch chan<- *prometheus.Desc) {
	ch <- v.desc[0]
	ch <- v.desc[1]
}

// Collect sends both histograms of every series. The buckets are read one
// by one while requests go on, so a scrape may see an observation in its
// bucket and not yet in the sum; the count is the buckets' total, so it
// always equals the +Inf bucket.
func (v *pairVec) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	list := make([]*pairSeries, 0, len(v.series))
	for _, s := range v.series {
		list = append(list, s)
	}
	v.mu.Unlock()
	for _, s := range list {
		for h := range 2 {
			bounds, c := v.bounds[h], s.counts[h*s.off:]
			buckets := make(map[float64]uint64, len(bounds))
			total := uint64(0)
			for i, le := range bounds {
				total += c[i].Load()
				buckets[le] = total
			}
			total += c[len(bounds)].Load()
			sum := math.Float64frombits(c[len(bounds)+1].Load())
			ch <- prometheus.MustNewConstHistogram(v.desc[h], total, sum, buckets, s.labels...)
		}
	}
}
