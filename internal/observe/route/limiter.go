package route

// Limiter caps distinct values per key (routes per service) and distinct
// keys, so labels stay bounded whatever the traffic. Not safe for
// concurrent use.
type Limiter struct {
	maxKeys, maxPerKey int
	seen               map[string]map[string]struct{}
	overflow           uint64
}

// NewLimiter allows maxKeys keys with maxPerKey values each.
func NewLimiter(maxKeys, maxPerKey int) *Limiter {
	return &Limiter{maxKeys: maxKeys, maxPerKey: maxPerKey, seen: make(map[string]map[string]struct{})}
}

// Limit returns key and value unchanged while within the limits, and Other
// for whichever overflowed.
func (l *Limiter) Limit(key, value string) (string, string) {
	vals, ok := l.seen[key]
	if !ok {
		if len(l.seen) >= l.maxKeys {
			l.overflow++
			key = Other
			if vals, ok = l.seen[Other]; !ok {
				vals = make(map[string]struct{})
				l.seen[Other] = vals
			}
		} else {
			vals = make(map[string]struct{})
			l.seen[key] = vals
		}
	}
	if _, ok := vals[value]; ok {
		return key, value
	}
	if len(vals) >= l.maxPerKey {
		l.overflow++
		return key, Other
	}
	vals[value] = struct{}{}
	return key, value
}

// Overflows counts values replaced by Other.
func (l *Limiter) Overflows() uint64 { return l.overflow }
