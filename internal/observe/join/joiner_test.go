package join

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestJoinerLearnsListenersJoinsAndExpires: client legs are kept only for
// listeners learned from records; a record waits for its legs until
// MaxAge and is then counted with its reason; joined records are found by
// ID and observed in the histogram, one sample per phase.
func TestJoinerLearnsListenersJoinsAndExpires(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxResults = 2
	j := New(cfg, prometheus.DefBuckets)
	now := uint64(10 * time.Second)

	// Before any record names the listener its client leg is not kept.
	j.AddLeg(Leg{Client: cli, Server: gw, Start: now, End: now + 300*ms})
	j.AddLeg(up("early", gwOut, now+ms, now+200*ms))
	early := rec("early", now+ms/2, now+300*ms)
	j.Offer([]Record{early})
	j.Tick(now + 400*ms)
	if _, ok := j.Lookup("early"); ok {
		t.Fatal("joined with a client leg of an unknown listener")
	}
	// Expired after MaxAge, counted.
	j.Tick(now + 300*ms + uint64(cfg.MaxAge) + ms)
	if s := j.Stats(); s.Outcomes[NoClientLeg] != 1 || s.Received != 1 {
		t.Fatalf("stats %+v; want one record expired without a client leg", s)
	}

	// Now the listener is known: the next requests join.
	base := now + uint64(cfg.MaxAge) + 10*ms
	for i, id := range []string{"x", "y", "z"} {
		s64 := base + uint64(i)*uint64(time.Second)
		j.AddLeg(Leg{Client: cli, Server: gw, Start: s64, End: s64 + 300*ms})
		j.AddLeg(up(id, gwOut, s64+ms, s64+290*ms))
		j.Offer([]Record{rec(id, s64+ms/2, s64+301*ms)})
		j.Tick(s64 + 310*ms)
		b, ok := j.Lookup(id)
		if !ok || b.BackendNS != int64(289*ms) {
			t.Fatalf("%s: found %v, %+v", id, ok, b)
		}
	}
	if _, ok := j.Lookup("x"); ok {
		t.Error("MaxResults 2 kept a third result")
	}
	if s := j.Stats(); s.Outcomes[Joined] != 3 {
		t.Fatalf("stats %+v", s)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(j)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				got[key] = float64(h.GetSampleCount())
			} else {
				got[key] = m.GetCounter().GetValue()
			}
		}
	}
	for k, want := range map[string]float64{
		"rauta_gateway_request_phase_duration_seconds,kernel,":  3,
		"rauta_gateway_request_phase_duration_seconds,gateway,": 3,
		"rauta_gateway_request_phase_duration_seconds,backend,": 3,
		"rauta_observer_join_records_total,joined":              3,
		"rauta_observer_join_records_total,no_client_leg":       1,
		"rauta_observer_join_records_received_total":            4,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], want, got)
		}
	}
}

// TestJoinerBounded: a full queue and full pending records drop and
// count; the index rotates at MaxLegs.
func TestJoinerBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPending, cfg.MaxLegs = 3, 4
	j := New(cfg, prometheus.DefBuckets)
	for range cap(j.in) + 1 {
		j.Offer([]Record{rec("q", 1, 2)})
	}
	if s := j.Stats(); s.Dropped != 1 {
		t.Fatalf("dropped %d, want the batch past the queue", s.Dropped)
	}
	j.Tick(ms)
	if len(j.pending) != 3 || j.Stats().Dropped != 1+uint64(cap(j.in))-3 {
		t.Fatalf("pending %d dropped %d", len(j.pending), j.Stats().Dropped)
	}
	for i := range 10 {
		j.AddLeg(up("a", gwOut, uint64(i), uint64(i)+1))
	}
	if j.idx.Len() > 2*cfg.MaxLegs {
		t.Fatalf("index holds %d legs, bound %d", j.idx.Len(), 2*cfg.MaxLegs)
	}
}
