package lb

import (
	"math"
	"testing"
)

func TestLeastRequestAvoidsBusyEndpoint(t *testing.T) {
	for _, n := range []int{2, 3, 10} {
		eps := podEndpoints(n)
		busy := eps[n/2]
		for range 50 {
			busy.Acquire()
		}
		b := newLeastRequest(eps, nil)
		// Two distinct endpoints are compared, so the single busy one loses
		// every comparison it is part of.
		for range 10_000 {
			if e := b.Pick(0); e == busy {
				t.Fatalf("n=%d: picked the busy endpoint", n)
			}
		}
	}
}

// With endpoint i carrying i requests, power of two choices picks i with
// probability 2(n-1-i)/(n(n-1)): it wins exactly when sampled together with a
// busier one. 200k picks put 3 standard deviations near 0.003, so the
// tolerance of 0.01 cannot fail by chance in practice while a bias (e.g. a
// sampler that can draw the same endpoint twice) would.
func TestLeastRequestDistribution(t *testing.T) {
	const n, picks = 10, 200_000
	eps := podEndpoints(n)
	for i, e := range eps {
		for range i {
			e.Acquire()
		}
	}
	b := newLeastRequest(eps, nil)
	counts := map[*Endpoint]int{}
	for range picks {
		counts[b.Pick(0)]++
	}
	for i, e := range eps {
		want := 2 * float64(n-1-i) / float64(n*(n-1))
		got := float64(counts[e]) / picks
		if math.Abs(got-want) > 0.01 {
			t.Errorf("endpoint with %d in flight: share %.4f, want %.4f", i, got, want)
		}
	}
}

// Equal loads spread evenly, so an idle backend is not starved.
func TestLeastRequestEqualLoadIsUniform(t *testing.T) {
	const n, picks = 4, 100_000
	eps := podEndpoints(n)
	b := newLeastRequest(eps, nil)
	counts := map[*Endpoint]int{}
	for range picks {
		counts[b.Pick(0)]++
	}
	for _, e := range eps {
		if got := float64(counts[e]) / picks; math.Abs(got-0.25) > 0.01 {
			t.Errorf("%s share %.4f, want 0.25", e.Addr, got)
		}
	}
}

// Requests that hold their endpoint while others arrive end up spread evenly:
// the in-flight counts steer each pick.
func TestLeastRequestBalancesHeldRequests(t *testing.T) {
	eps := podEndpoints(4)
	b := newLeastRequest(eps, nil)
	for range 400 {
		b.Pick(0).Acquire()
	}
	for _, e := range eps {
		if got := e.Inflight(); got < 90 || got > 110 {
			t.Errorf("%s holds %d of 400 requests, want about 100", e.Addr, got)
		}
	}
}
