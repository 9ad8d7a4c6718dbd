package route

// Limiter caps distinct values per key (routes per service) and distinct
// keys, so labels stay bounded whatever the traffic. When a budget is
// full, the least recently seen value makes room if it has been idle for at least the
// idle age; otherwise the newcomer becomes Other. So a scanner's one-off
// paths or a burst of phantom services cannot hold the budget for ever,
// and routes in steady use are never pushed out by newcomers. Not safe
// for concurrent use.
type Limiter struct {
	maxKeys, maxPerKey int
	idleNS             uint64
	keys               map[string]*keyEntry
	other              *keyEntry // the Other key: outside the budget
	overflow           uint64
	evictions          uint64
	// OnEvict, when set, is called when a value (route) or a whole key
	// (service; route is then "") leaves the budget, so that exporters
	// can drop its series.
	OnEvict func(key, value string)
}

// Entries keep only their last-seen time: a hit is one pointer write.
// The least recently seen entry is searched for only when a budget is
// full and a new value arrives (at most maxKeys or maxPerKey entries).
type keyEntry struct {
	name string
	last uint64
	vals map[string]*valEntry
}

type valEntry struct{ last uint64 }

// NewLimiter allows maxKeys keys with maxPerKey values each; a value or
// key idle for idleNS nanoseconds (of the clock the caller passes to
// Limit) may be evicted to make room. idleNS 0 never evicts.
func NewLimiter(maxKeys, maxPerKey int, idleNS uint64) *Limiter {
	l := &Limiter{maxKeys: maxKeys, maxPerKey: maxPerKey, idleNS: idleNS, keys: make(map[string]*keyEntry)}
	l.other = newKeyEntry(Other)
	return l
}

func newKeyEntry(name string) *keyEntry {
	return &keyEntry{name: name, vals: make(map[string]*valEntry)}
}

// Limit returns key and value unchanged while within the limits, and Other
// for whichever overflowed. now is a monotonic time in nanoseconds.
func (l *Limiter) Limit(key, value string, now uint64) (string, string) {
	k := l.key(key, now)
	if k == nil {
		l.overflow++
		k = l.other
	}
	return k.name, l.value(k, value, now, false)
}

// LimitKnown is Limit for a value known to be legitimate (a route from
// the configuration, not from traffic): it is admitted even when the
// budget is full, evicting the least recently seen value if one is idle,
// and is itself never evicted while it stays in use.
func (l *Limiter) LimitKnown(key, value string, now uint64) (string, string) {
	k := l.key(key, now)
	if k == nil {
		l.overflow++
		k = l.other
	}
	return k.name, l.value(k, value, now, true)
}

func (l *Limiter) key(name string, now uint64) *keyEntry {
	if name == Other {
		return l.other
	}
	if k := l.keys[name]; k != nil {
		k.last = now
		return k
	}
	if len(l.keys) >= l.maxKeys && !l.evictKey(now) {
		return nil
	}
	k := newKeyEntry(name)
	k.last = now
	l.keys[name] = k
	return k
}

func (l *Limiter) value(k *keyEntry, name string, now uint64, known bool) string {
	if v := k.vals[name]; v != nil {
		v.last = now
		return name
	}
	if len(k.vals) >= l.maxPerKey && !l.evictValue(k, now) && !known {
		l.overflow++
		return Other
	}
	k.vals[name] = &valEntry{last: now}
	return name
}

// idle: last is at least the idle age before now.
func (l *Limiter) idle(last, now uint64) bool {
	return l.idleNS > 0 && now >= last && now-last >= l.idleNS
}

func (l *Limiter) evictKey(now uint64) bool {
	var oldest *keyEntry
	for _, k := range l.keys {
		if oldest == nil || k.last < oldest.last || (k.last == oldest.last && k.name < oldest.name) {
			oldest = k
		}
	}
	if oldest == nil || !l.idle(oldest.last, now) {
		return false
	}
	delete(l.keys, oldest.name)
	l.evictions++
	if l.OnEvict != nil {
		l.OnEvict(oldest.name, "")
	}
	return true
}

func (l *Limiter) evictValue(k *keyEntry, now uint64) bool {
	var oldest string
	var last uint64
	found := false
	for name, v := range k.vals {
		if !found || v.last < last || (v.last == last && name < oldest) {
			oldest, last, found = name, v.last, true
		}
	}
	if !found || !l.idle(last, now) {
		return false
	}
	delete(k.vals, oldest)
	l.evictions++
	if l.OnEvict != nil {
		l.OnEvict(k.name, oldest)
	}
	return true
}

// Overflows counts values replaced by Other.
func (l *Limiter) Overflows() uint64 { return l.overflow }

// Evictions counts keys and values that left the budget after being idle.
func (l *Limiter) Evictions() uint64 { return l.evictions }
