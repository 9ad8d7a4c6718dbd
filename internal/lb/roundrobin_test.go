package lb

import (
	"sync"
	"testing"
)

func TestRoundRobinEvenTurns(t *testing.T) {
	eps := podEndpoints(7)
	b := newRoundRobin(eps, nil)
	counts := map[*Endpoint]int{}
	var prev *Endpoint
	for range 7 * 100 {
		e := b.Pick(0)
		if e == prev {
			t.Fatalf("%s picked twice in a row", e.Addr)
		}
		prev = e
		counts[e]++
	}
	for _, e := range eps {
		if counts[e] != 100 {
			t.Errorf("%s picked %d times, want 100", e.Addr, counts[e])
		}
	}
}

// The atomic counter keeps turns exact under concurrency.
func TestRoundRobinConcurrent(t *testing.T) {
	eps := podEndpoints(5)
	b := newRoundRobin(eps, nil)
	const goroutines, each = 4, 5 * 1000
	var mu sync.Mutex
	counts := map[*Endpoint]int{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			local := map[*Endpoint]int{}
			for range each {
				local[b.Pick(0)]++
			}
			mu.Lock()
			defer mu.Unlock()
			for e, n := range local {
				counts[e] += n
			}
		})
	}
	wg.Wait()
	for _, e := range eps {
		if want := goroutines * each / len(eps); counts[e] != want {
			t.Errorf("%s picked %d times, want %d", e.Addr, counts[e], want)
		}
	}
}
