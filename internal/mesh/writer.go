package mesh

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/false-systems/rauta/bpf"
)

// flagSteerProxy is SVC_STEER_PROXY in bpf/mesh.c.
const flagSteerProxy = 1

// maxSlots is the most endpoints one frontend can hold (svc_value.count is
// 16 bits).
const maxSlots = 1<<16 - 1

// Table is the part of a BPF hash map the Writer changes; *ebpf.Map is
// one. Tests use a recording fake.
type Table interface {
	Put(key, value any) error
	Delete(key any) error
}

// frontendState is what the maps hold for one frontend.
type frontendState struct {
	id uint32
	// count and flags are the published svc_value; published is false
	// until the frontend's key is in the services map.
	count     int
	flags     uint16
	published bool
	// slots are the endpoint map's entries (id, 0..len-1). Slots at and
	// above count are invisible to the programs (left behind by a write
	// that failed half way); the next write reuses or deletes them.
	slots   []bpf.MeshEpValue
	service string
}

// Writer keeps the services and endpoints maps equal to a State by
// writing differences only. Its ordering guarantees that a program never
// finds a published frontend whose endpoint set was non-empty before an
// update and non-empty after it with zero endpoints or a missing slot
// below its count (apart from the moment a shrink deletes slots above the
// new count, which the program covers by falling back to slot 0):
//
//  1. slots below the new count are written first (a slot below the old
//     count switches from an old endpoint to a new one; one above it is
//     invisible until step 2);
//  2. the frontend's count and flags are written;
//  3. slots at and above the new count are deleted.
//
// A removed frontend's key is deleted before its slots. Frontend ids are
// never reused while the Writer lives (they count up), so a program that
// read a frontend just before its removal cannot land in another one's
// endpoints.
type Writer struct {
	services, endpoints Table
	cur                 map[Frontend]*frontendState
	nextID              uint32
}

// NewWriter returns a Writer for empty maps.
func NewWriter(services, endpoints Table) *Writer {
	return &Writer{services: services, endpoints: endpoints, cur: make(map[Frontend]*frontendState), nextID: 1}
}

// Iterable is the part of a BPF map RecoverWriter reads.
type Iterable interface {
	Iterate() *ebpf.MapIterator
}

// RecoverWriter returns a Writer for maps that already hold entries (pinned
// by an agent that ran before): it reads what they hold, so the first Apply
// writes only what changed since. Endpoint slots of no frontend are
// remembered and deleted by the first Apply.
func RecoverWriter(services, endpoints interface {
	Table
	Iterable
}) (*Writer, error) {
	w := NewWriter(services, endpoints)
	byID := make(map[uint32]*frontendState)
	var k bpf.MeshSvcKey
	var v bpf.MeshSvcValue
	it := services.Iterate()
	for it.Next(&k, &v) {
		st := &frontendState{id: v.Id, count: int(v.Count), flags: v.Flags, published: true}
		w.cur[keyFrontend(k)] = st
		byID[v.Id] = st
		w.nextID = max(w.nextID, v.Id+1)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read services map: %w", err)
	}
	var ek bpf.MeshEpKey
	var ev bpf.MeshEpValue
	orphans := make(map[uint32]*frontendState)
	it = endpoints.Iterate()
	for it.Next(&ek, &ev) {
		st := byID[ek.Id]
		if st == nil {
			st = orphans[ek.Id]
			if st == nil {
				st = &frontendState{id: ek.Id}
				orphans[ek.Id] = st
			}
		}
		if ek.Slot >= maxSlots {
			continue
		}
		for len(st.slots) <= int(ek.Slot) {
			st.slots = append(st.slots, bpf.MeshEpValue{})
		}
		st.slots[ek.Slot] = ev
		w.nextID = max(w.nextID, ek.Id+1)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read endpoints map: %w", err)
	}
	// An orphan (slots without a frontend) is kept under a frontend no
	// State names (protocol 0), so the first Apply deletes its slots.
	for id, st := range orphans {
		w.cur[Frontend{Addr: netip.AddrFrom4([4]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})}] = st
	}
	return w, nil
}

// Frontends is how many frontends the maps hold.
func (w *Writer) Frontends() int { return len(w.cur) }

// Slots is how many endpoint slots the maps hold.
func (w *Writer) Slots() int {
	n := 0
	for _, st := range w.cur {
		n += len(st.slots)
	}
	return n
}

// Apply makes the maps hold want. Each frontend is written on its own; an
// error for one (a full map) leaves the others written and is returned
// joined with the rest. Applying the same State twice writes nothing.
func (w *Writer) Apply(want State) error {
	var errs []error
	// Removals first: they free room in the maps for additions.
	for f, st := range w.cur {
		if _, ok := want[f]; ok {
			continue
		}
		if err := w.remove(f, st); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", f, err))
		}
	}
	for _, f := range want.Frontends() {
		if err := w.apply(f, want[f]); err != nil {
			errs = append(errs, fmt.Errorf("write %s (%s): %w", f, want[f].Service, err))
		}
	}
	return errors.Join(errs...)
}

func (w *Writer) remove(f Frontend, st *frontendState) error {
	if st.published {
		if err := w.services.Delete(svcKey(f)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		st.published = false
		st.count = 0
	}
	if err := w.trim(st, 0); err != nil {
		return err
	}
	delete(w.cur, f)
	return nil
}

// trim deletes the slots at and above n, from the top.
func (w *Writer) trim(st *frontendState, n int) error {
	for i := len(st.slots) - 1; i >= n; i-- {
		if err := w.endpoints.Delete(bpf.MeshEpKey{Id: st.id, Slot: uint32(i)}); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		st.slots = st.slots[:i]
	}
	return nil
}

func (w *Writer) apply(f Frontend, e Entry) error {
	want := make([]bpf.MeshEpValue, 0, len(e.Backends))
	for _, b := range e.Backends {
		if b.Addr().Unmap().Is4() != f.Addr.Is4() {
			continue // the programs cannot send a socket across families
		}
		want = append(want, epValue(netip.AddrPortFrom(b.Addr().Unmap(), b.Port())))
	}
	if len(want) > maxSlots {
		want = want[:maxSlots]
	}
	var flags uint16
	if e.Steer {
		flags |= flagSteerProxy
	}

	st := w.cur[f]
	if st == nil {
		st = &frontendState{id: w.allocID()}
		w.cur[f] = st
	}
	st.service = e.Service
	next := arrange(st.slots[:min(st.count, len(st.slots))], want)

	// 1. Slots below the new count.
	for i, ep := range next {
		if i < len(st.slots) && st.slots[i] == ep {
			continue
		}
		if err := w.endpoints.Put(bpf.MeshEpKey{Id: st.id, Slot: uint32(i)}, ep); err != nil {
			return fmt.Errorf("endpoint slot %d: %w", i, err)
		}
		if i < len(st.slots) {
			st.slots[i] = ep
		} else {
			st.slots = append(st.slots, ep)
		}
	}
	// 2. The frontend.
	if !st.published || st.count != len(next) || st.flags != flags {
		v := bpf.MeshSvcValue{Id: st.id, Count: uint16(len(next)), Flags: flags}
		if err := w.services.Put(svcKey(f), v); err != nil {
			return fmt.Errorf("frontend: %w", err)
		}
		st.published, st.count, st.flags = true, len(next), flags
	}
	// 3. Slots above it.
	return w.trim(st, len(next))
}

func (w *Writer) allocID() uint32 {
	used := make(map[uint32]bool, len(w.cur))
	for _, st := range w.cur {
		used[st.id] = true
	}
	for used[w.nextID] || w.nextID == 0 {
		w.nextID++
	}
	id := w.nextID
	w.nextID++
	return id
}

// arrange orders want into slots so that as few slots as possible change:
// an endpoint that stays keeps its slot, a new one fills the slot of a
// removed one, and when the set shrinks the endpoints of the top slots
// move down into the holes.
func arrange(old, want []bpf.MeshEpValue) []bpf.MeshEpValue {
	wanted := make(map[bpf.MeshEpValue]bool, len(want))
	for _, ep := range want {
		wanted[ep] = true
	}
	next := make([]bpf.MeshEpValue, 0, max(len(old), len(want)))
	hole := make([]bool, 0, cap(next))
	placed := make(map[bpf.MeshEpValue]bool, len(want))
	for _, ep := range old {
		if wanted[ep] && !placed[ep] {
			placed[ep] = true
			next = append(next, ep)
			hole = append(hole, false)
			continue
		}
		next = append(next, bpf.MeshEpValue{})
		hole = append(hole, true)
	}
	h := 0
	for _, ep := range want {
		if placed[ep] {
			continue
		}
		placed[ep] = true
		for h < len(hole) && !hole[h] {
			h++
		}
		if h < len(hole) {
			next[h], hole[h] = ep, false
			continue
		}
		next = append(next, ep)
		hole = append(hole, false)
	}
	// Fill the remaining holes from the top.
	for i := 0; i < len(next); i++ {
		for len(next) > 0 && hole[len(next)-1] {
			next, hole = next[:len(next)-1], hole[:len(hole)-1]
		}
		if i < len(next) && hole[i] {
			last := len(next) - 1
			next[i], hole[i] = next[last], false
			next, hole = next[:last], hole[:last]
		}
	}
	return next
}
