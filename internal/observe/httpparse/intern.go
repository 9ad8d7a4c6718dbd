package httpparse

// Interner hands out one string per distinct value, so that the Host,
// User-Agent and request-target of steady traffic are not allocated for
// every request (they were the observer's only allocations per exchange).
// It keeps at most max values and starts over when full, so memory stays
// bounded whatever the traffic. Not safe for concurrent use.
type Interner struct {
	m   map[string]string
	max int
}

// NewInterner keeps up to limit distinct values (at least 1).
func NewInterner(limit int) *Interner {
	return &Interner{m: make(map[string]string), max: max(limit, 1)}
}

// ParseRequest is the package's ParseRequest with the returned strings
// taken from in.
func (in *Interner) ParseRequest(b []byte, r *Request) error {
	return parseRequest(b, r, in)
}

// Len is the number of values held.
func (in *Interner) Len() int { return len(in.m) }

// cut returns b cut to n bytes as a string: interned when in is not nil.
func (in *Interner) cut(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	if in == nil {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok { // the lookup does not allocate
		return s
	}
	if len(in.m) >= in.max {
		clear(in.m)
	}
	s := string(b)
	in.m[s] = s
	return s
}
