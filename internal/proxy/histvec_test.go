package proxy

import (
	"bytes"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// exposition is the text format of what reg gathers.
func exposition(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestPairVecExpositionMatchesHistogramVec: the same observations, made
// through a pairVec and through two client_golang HistogramVecs, expose
// the same text: names, help, label sets, cumulative buckets, sums and
// counts (values on a bucket's bound, past the last bound, zero and
// negative ones included), and a deleted series is gone from both.
func TestPairVecExpositionMatchesHistogramVec(t *testing.T) {
	labels := []string{"a", "b"}
	durOpts := prometheus.HistogramOpts{Name: "x_duration_seconds", Help: "Durations.", Buckets: durationBuckets}
	sizeOpts := prometheus.HistogramOpts{Name: "x_size_bytes", Help: "Sizes.", Buckets: sizeBuckets}

	ours := prometheus.NewRegistry()
	v := newPairVec(durOpts, sizeOpts, labels)
	ours.MustRegister(v)
	theirs := prometheus.NewRegistry()
	hd, hs := prometheus.NewHistogramVec(durOpts, labels), prometheus.NewHistogramVec(sizeOpts, labels)
	theirs.MustRegister(hd, hs)

	observe := func(a, b string, d, size float64) {
		v.observe(v.get([]string{a, b}), 0, d)
		v.observe(v.get([]string{a, b}), 1, size)
		hd.WithLabelValues(a, b).Observe(d)
		hs.WithLabelValues(a, b).Observe(size)
	}
	for i, d := range []float64{0, 0.0005, 0.0007, 0.01, 0.3, 10, 11, -1} {
		observe("gw", "r1", d, float64(i*1000))
	}
	observe("gw", "r2", 0.002, 1<<30)
	observe("gw2", "r1", 0.1, 64)
	if got, want := exposition(t, ours), exposition(t, theirs); got != want {
		t.Fatalf("exposition differs\n--- pairVec:\n%s\n--- HistogramVec:\n%s", got, want)
	}

	v.deleteMatching(func(l []string) bool { return l[1] == "r1" })
	hd.DeletePartialMatch(prometheus.Labels{"b": "r1"})
	hs.DeletePartialMatch(prometheus.Labels{"b": "r1"})
	v.delete([]string{"gw", "r2"})
	hd.DeleteLabelValues("gw", "r2")
	hs.DeleteLabelValues("gw", "r2")
	if got, want := exposition(t, ours), exposition(t, theirs); got != want {
		t.Fatalf("after deleting, exposition differs\n--- pairVec:\n%s\n--- HistogramVec:\n%s", got, want)
	}
}

// TestPairVecConcurrent: observations from several goroutines, on one
// series and on series created concurrently under the same labels, are
// all counted, and the sum is exact for values that add exactly.
func TestPairVecConcurrent(t *testing.T) {
	v := newPairVec(prometheus.HistogramOpts{Name: "d", Buckets: durationBuckets},
		prometheus.HistogramOpts{Name: "s", Buckets: sizeBuckets}, []string{"k"})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s := v.get([]string{"same"})
				v.observe(s, 0, 0.25)
				v.observe(s, 1, 2)
			}
		})
	}
	wg.Wait()
	reg := prometheus.NewRegistry()
	reg.MustRegister(v)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%s: %d series, want 1", mf.GetName(), len(mf.GetMetric()))
		}
		h := mf.GetMetric()[0].GetHistogram()
		want := map[string]float64{"d": 2000, "s": 16000}[mf.GetName()]
		if h.GetSampleCount() != 8000 || h.GetSampleSum() != want {
			t.Errorf("%s: count %d sum %v, want 8000 and %v", mf.GetName(), h.GetSampleCount(), h.GetSampleSum(), want)
		}
	}
}

// TestRouteMetricsPastTheCache: a route answering with more distinct
// codes than its cache holds still counts every request under its code.
func TestRouteMetricsPastTheCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rm := &routeMetrics{m: m, gateway: "ns/gw", route: "r"}
	codes := maxCached + 40
	for range 3 {
		for c := 100; c < 100+codes; c++ {
			rm.observe("GET", "http", 1, c, 0.001, 10)
		}
	}
	got := map[string]uint64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == "http_response_status_code" {
					got[lp.GetValue()] += s.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if len(got) != codes {
		t.Fatalf("%d series, want %d", len(got), codes)
	}
	for c := 100; c < 100+codes; c++ {
		if got[strconv.Itoa(c)] != 3 {
			t.Errorf("code %d: %d observations, want 3", c, got[strconv.Itoa(c)])
		}
	}
}
