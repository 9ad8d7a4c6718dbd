package join

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config bounds the joiner (docs/observer.md, "The gateway's view and the
// kernel's").
type Config struct {
	// MaxLegs bounds the legs kept per index generation (two are kept).
	MaxLegs int
	// MaxAge is how long after its end a gateway record waits for its
	// legs before it is counted as not joined; it is also the index's
	// rotation period, so a leg is kept one to two MaxAge.
	MaxAge time.Duration
	// MaxPending bounds the records waiting for their legs.
	MaxPending int
	// MaxResults bounds the joined records kept for lookups by ID.
	MaxResults int
	// MaxListeners bounds the gateway listener addresses learned from
	// records (exchanges to them are kept as client legs).
	MaxListeners int
	// MaxGateways bounds the gateway label's values; past it "_OTHER".
	MaxGateways int
}

// DefaultConfig is what rauta observe starts with.
func DefaultConfig() Config {
	return Config{MaxLegs: 65536, MaxAge: 5 * time.Second,
		MaxPending: 16384, MaxResults: 4096, MaxListeners: 256, MaxGateways: 64}
}

// Phases are the label values of the breakdown histogram.
var Phases = [...]string{"kernel", "gateway", "backend"}

// Joiner joins gateway records with the legs the pipeline saw. AddLeg and
// Tick run on the pipeline's goroutine; Offer (the pollers), Lookup and
// the collector are safe from any.
type Joiner struct {
	cfg       Config
	idx       *Index
	listeners map[netip.AddrPort]struct{}
	in        chan []Record
	pending   []Record
	rotated   uint64
	scratchC  []Leg
	scratchU  []Leg
	gateways  map[string]struct{}

	hist     *prometheus.HistogramVec
	results  results
	outcomes [numReasons]atomic.Uint64
	dropped  atomic.Uint64 // records lost: queue or pending full
	pollErrs atomic.Uint64
	received atomic.Uint64
	// answering: pollers whose gateway has answered (poll.go).
	answering atomic.Int64
	// skipped: namespaces Discover left out, MaxNamespaces being polled.
	skipped atomic.Uint64
}

// New makes a joiner whose breakdown histogram uses buckets.
func New(cfg Config, buckets []float64) *Joiner {
	return &Joiner{
		cfg:       cfg,
		idx:       NewIndex(cfg.MaxLegs),
		listeners: map[netip.AddrPort]struct{}{},
		in:        make(chan []Record, 64),
		gateways:  map[string]struct{}{},
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rauta_gateway_request_phase_duration_seconds",
			Help:    "Requests through a RAUTA gateway, joined with the kernel's view of both legs: time waiting in the gateway's node before it read the head (kernel), in the gateway (gateway), from the request out to the backend's status line in (backend).",
			Buckets: buckets,
		}, []string{"phase", "rauta_gateway"}),
		results: results{byID: map[string]int{}, ring: make([]Breakdown, max(cfg.MaxResults, 1))},
	}
}

// Offer hands a batch of records from a poller; a full queue drops it
// (counted): the pipeline never waits for a poller, nor a poller for it.
func (j *Joiner) Offer(recs []Record) {
	j.received.Add(uint64(len(recs)))
	select {
	case j.in <- recs:
	default:
		j.dropped.Add(uint64(len(recs)))
	}
}

// PollFailed counts a failed fetch of records.
func (j *Joiner) PollFailed() { j.pollErrs.Add(1) }

// AddLeg keeps a complete exchange the kernel saw when it may be part of a
// join: it goes to a learned gateway listener, or it carried an
// X-Request-Id (idHash != 0).
func (j *Joiner) AddLeg(l Leg) {
	if _, ok := j.listeners[l.Server]; ok {
		j.idx.AddClient(l)
	}
	if l.IDHash != 0 {
		j.idx.AddUpstream(l)
	}
}

// Tick takes the records that arrived, joins what it can and expires what
// waited MaxAge; now is CLOCK_MONOTONIC.
func (j *Joiner) Tick(now uint64) {
	if now-j.rotated >= uint64(j.cfg.MaxAge) {
		j.idx.Rotate()
		j.rotated = now
	}
	for more := true; more; {
		select {
		case recs := <-j.in:
			for i := range recs {
				j.learn(&recs[i])
				if len(j.pending) >= j.cfg.MaxPending {
					j.dropped.Add(1)
					continue
				}
				j.pending = append(j.pending, recs[i])
			}
		default:
			more = false
		}
	}
	keep := j.pending[:0]
	for i := range j.pending {
		rec := &j.pending[i]
		j.scratchC, j.scratchU = j.idx.Candidates(rec, j.scratchC[:0], j.scratchU[:0])
		b, why := Join(rec, j.scratchC, j.scratchU)
		switch {
		case why == Joined:
			j.joined(&b)
		case now > rec.EndMono && now-rec.EndMono > uint64(j.cfg.MaxAge):
			j.outcomes[why].Add(1)
		default:
			keep = append(keep, *rec)
		}
	}
	clear(j.pending[len(keep):])
	j.pending = keep
}

func (j *Joiner) learn(rec *Record) {
	if !rec.Local.IsValid() {
		return
	}
	if _, ok := j.listeners[rec.Local]; !ok && len(j.listeners) < j.cfg.MaxListeners {
		j.listeners[rec.Local] = struct{}{}
	}
}

func (j *Joiner) joined(b *Breakdown) {
	j.outcomes[Joined].Add(1)
	gw := b.Gateway
	if _, ok := j.gateways[gw]; !ok {
		if len(j.gateways) >= j.cfg.MaxGateways {
			gw = "_OTHER"
		} else {
			j.gateways[gw] = struct{}{}
		}
	}
	for i, ns := range [...]int64{b.KernelNS, b.GatewayNS, b.BackendNS} {
		if i == 2 && !b.Upstream.IsValid() {
			break // answered by the gateway: no backend phase
		}
		j.hist.WithLabelValues(Phases[i], gw).Observe(float64(ns) / 1e9)
	}
	j.results.put(b)
}

// Lookup returns the newest joined record with request ID id.
func (j *Joiner) Lookup(id string) (Breakdown, bool) { return j.results.get(id) }

// Stats are the joiner's counters.
type Stats struct {
	Received, Dropped, PollErrors uint64
	Outcomes                      [numReasons]uint64
}

// Stats reads the counters; safe from any goroutine.
func (j *Joiner) Stats() Stats {
	s := Stats{Received: j.received.Load(), Dropped: j.dropped.Load(), PollErrors: j.pollErrs.Load()}
	for i := range s.Outcomes {
		s.Outcomes[i] = j.outcomes[i].Load()
	}
	return s
}

var (
	descOutcomes = prometheus.NewDesc("rauta_observer_join_records_total", "Gateway timing records by what the join made of them: joined, or the reason they were not (after waiting the join's max age).", []string{"result"}, nil)
	descReceived = prometheus.NewDesc("rauta_observer_join_records_received_total", "Gateway timing records fetched from gateways' admin ports.", nil, nil)
	descDropped  = prometheus.NewDesc("rauta_observer_join_records_dropped_total", "Gateway timing records dropped: the join's queue or its pending records were full.", nil, nil)
	descPollErrs = prometheus.NewDesc("rauta_observer_join_poll_errors_total", "Failed fetches of a gateway's timing records.", nil, nil)
	descSkipped  = prometheus.NewDesc("rauta_observer_join_namespaces_skipped_total", "Network namespaces matching -gateway-netns left unpolled on a scan: -gateway-netns-max were polled already.", nil, nil)
	descGateways = prometheus.NewDesc("rauta_observer_join_gateways", "Gateway admin endpoints polled now that have answered (per network namespace with -gateway-netns patterns).", nil, nil)
)

// Describe implements prometheus.Collector.
func (j *Joiner) Describe(ch chan<- *prometheus.Desc) {
	j.hist.Describe(ch)
	ch <- descOutcomes
	ch <- descReceived
	ch <- descDropped
	ch <- descPollErrs
	ch <- descGateways
	ch <- descSkipped
}

// Collect implements prometheus.Collector.
func (j *Joiner) Collect(ch chan<- prometheus.Metric) {
	j.hist.Collect(ch)
	s := j.Stats()
	for i, v := range s.Outcomes {
		ch <- prometheus.MustNewConstMetric(descOutcomes, prometheus.CounterValue, float64(v), ReasonNames[i])
	}
	ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(s.Received))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(descPollErrs, prometheus.CounterValue, float64(s.PollErrors))
	ch <- prometheus.MustNewConstMetric(descGateways, prometheus.GaugeValue, float64(j.answering.Load()))
	ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(j.skipped.Load()))
}

// results keeps the last joined records for lookups by request ID.
type results struct {
	mu   sync.Mutex
	ring []Breakdown
	next int
	byID map[string]int
}

func (r *results) put(b *Breakdown) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.ring[r.next].RequestID; old != "" && r.byID[old] == r.next {
		delete(r.byID, old)
	}
	r.ring[r.next] = *b
	r.byID[b.RequestID] = r.next
	r.next = (r.next + 1) % len(r.ring)
}

func (r *results) get(id string) (Breakdown, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.byID[id]
	if !ok {
		return Breakdown{}, false
	}
	return r.ring[i], true
}
