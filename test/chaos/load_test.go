package chaos_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// load sends GETs to one URL at a fixed rate (open loop: a request is due
// every 1/rate whether or not earlier ones finished) from workers that
// each dial from their own loopback address in 127.0.216.0/24, half of
// them over keep-alive connections and half on a new connection per
// request. A due request finding every worker busy is counted as skipped,
// so a stalled gateway shows up instead of slowing the generator down.
type load struct {
	url    string
	rate   int
	start  time.Time
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu      sync.Mutex
	samples []sample
	skipped int
}

// sample is one request: when it started and ended, relative to the
// start of the load, and why it failed (nil when it got a 200).
type sample struct {
	start, end time.Duration
	err        error
}

const (
	loadWorkers = 16
	// requestTimeout bounds each request: a request held longer than
	// this counts as failed.
	requestTimeout = 5 * time.Second
)

func startLoad(ctx context.Context, url string, rate int) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{url: url, rate: rate, start: time.Now(), cancel: cancel}
	due := make(chan struct{})
	for i := range loadWorkers {
		l.done.Add(1)
		go l.worker(ctx, i, due)
	}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		defer close(due)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case due <- struct{}{}:
			default:
				l.mu.Lock()
				l.skipped++
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *load) worker(ctx context.Context, i int, due <-chan struct{}) {
	defer l.done.Done()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 216, byte(1+i))}, Timeout: requestTimeout}
	tr := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: requestTimeout}
	for range due {
		start := time.Since(l.start)
		err := l.get(ctx, c)
		if ctx.Err() != nil {
			return // cut off by the end of the load, not by the gateway
		}
		l.mu.Lock()
		l.samples = append(l.samples, sample{start: start, end: time.Since(l.start), err: err})
		l.mu.Unlock()
	}
}

func (l *load) get(ctx context.Context, c *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// since is a point in time as an offset of the load's start.
func (l *load) since(t time.Time) time.Duration { return t.Sub(l.start) }

// stop ends the load and waits for its workers.
func (l *load) stop() {
	l.cancel()
	l.done.Wait()
}

// outcome summarises the load around a fault injected at faultAt (an
// offset of the load's start).
type outcome struct {
	requests, failed, skipped int
	firstErr                  error
	// firstOK is from the fault to the end of the first request that
	// started after it and succeeded; clean is from the fault to the end
	// of the last failed request (0 with no failure): from then on the
	// error rate is 0.
	firstOK, clean time.Duration
}

func (l *load) outcome(faultAt time.Duration) outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := append([]sample(nil), l.samples...)
	sort.Slice(s, func(i, j int) bool { return s[i].start < s[j].start })
	o := outcome{requests: len(s), skipped: l.skipped, firstOK: -1}
	for _, x := range s {
		if x.err != nil {
			o.failed++
			if o.firstErr == nil {
				o.firstErr = x.err
			}
			o.clean = max(o.clean, x.end-faultAt)
			continue
		}
		if x.start >= faultAt && (o.firstOK < 0 || x.end-faultAt < o.firstOK) {
			o.firstOK = x.end - faultAt
		}
	}
	return o
}

func (o outcome) String() string {
	return fmt.Sprintf("%d requests, %d failed, %d skipped (all workers busy); first success %s after the fault, error rate 0 from %s after it; first error: %v",
		o.requests, o.failed, o.skipped, o.firstOK.Round(time.Millisecond), o.clean.Round(time.Millisecond), o.firstErr)
}
