package join

import "net/netip"

// Index keeps the recent legs a record may need, by connection (client
// legs) and by request ID hash (upstream legs), in two generations: new
// legs go into the current one, lookups read both, and Rotate drops the
// older. A leg so lives between one and two rotation periods, and the
// index holds at most 2*MaxLegs legs whatever the traffic.
type Index struct {
	maxLegs   int
	cur, prev generation
}

type connKey struct{ client, server netip.AddrPort }

type generation struct {
	byConn map[connKey][]Leg
	byID   map[uint64][]Leg
	n      int
}

func newGeneration() generation {
	return generation{byConn: map[connKey][]Leg{}, byID: map[uint64][]Leg{}}
}

// NewIndex holds up to maxLegs legs per generation.
func NewIndex(maxLegs int) *Index {
	return &Index{maxLegs: max(maxLegs, 1), cur: newGeneration(), prev: newGeneration()}
}

// AddClient keeps l as a possible client leg (its server is a gateway
// listener).
func (x *Index) AddClient(l Leg) {
	k := connKey{l.Client, l.Server}
	x.cur.byConn[k] = append(x.cur.byConn[k], l)
	x.added()
}

// AddUpstream keeps l, which carried an X-Request-Id, as a possible
// upstream leg.
func (x *Index) AddUpstream(l Leg) {
	x.cur.byID[l.IDHash] = append(x.cur.byID[l.IDHash], l)
	x.added()
}

func (x *Index) added() {
	x.cur.n++
	if x.cur.n >= x.maxLegs {
		x.Rotate()
	}
}

// Rotate drops the older generation.
func (x *Index) Rotate() {
	x.prev = x.cur
	x.cur = newGeneration()
}

// Len is the number of legs held.
func (x *Index) Len() int { return x.cur.n + x.prev.n }

// Candidates appends the legs a record can join with: its connection's
// and those carrying its request ID.
func (x *Index) Candidates(rec *Record, client, upstream []Leg) ([]Leg, []Leg) {
	k := connKey{rec.Client, rec.Local}
	client = append(append(client, x.prev.byConn[k]...), x.cur.byConn[k]...)
	if rec.Upstream.IsValid() {
		h := HashID([]byte(rec.RequestID))
		upstream = append(append(upstream, x.prev.byID[h]...), x.cur.byID[h]...)
	}
	return client, upstream
}
