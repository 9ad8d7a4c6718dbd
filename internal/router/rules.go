package router

import "strings"

// ruleSet holds the routes one hostname group can reach, in precedence
// order. A group of up to smallRuleSet routes keeps them in one list that a
// lookup scans: most groups (a hostname per team or service) hold a few
// routes, for which buckets cost more to build and look up than the scan.
// A larger group is bucketed by first path segment so that a table of many
// routes scans only those that could match. A bucket holds the routes bound
// to its segment; the routes that can match any segment (regex paths, the
// prefix "/") are one list beside the buckets, and a lookup walks the bucket
// and that list merged by precedence. (Copying that list into every bucket,
// as before, cost 1.9 MiB of the table's 22.3 at 10,000 HTTPRoutes, where
// 100 regex routes share a host with 2,500 prefixes; the merge costs about
// 10 ns per lookup there.)
type ruleSet struct {
	// small is every route while there are at most smallRuleSet; nil after.
	small      []*Route
	bySegment  map[string][]ruleEntry
	anySegment []ruleEntry
	n          int32 // routes added: the next precedence
}

// smallRuleSet is the most routes a group scans without segment buckets.
const smallRuleSet = 8

// ruleEntry is a route and its precedence in the set (lower first). The
// precedence lives here, not in the Route, which a later Table may reuse.
type ruleEntry struct {
	pos int32
	rt  *Route
}

func (s *ruleSet) add(r *Route) {
	switch {
	case int(s.n) < smallRuleSet:
		s.small = append(s.small, r)
		s.n++
		return
	case int(s.n) == smallRuleSet:
		small := s.small
		s.small, s.n = nil, 0
		for _, rt := range small {
			s.bucket(rt)
		}
	}
	s.bucket(r)
}

// bucket adds r, the next route in precedence, to the segment buckets.
func (s *ruleSet) bucket(r *Route) {
	e := ruleEntry{pos: s.n, rt: r}
	s.n++
	seg, bound := r.matcher.path.segment()
	if !bound {
		s.anySegment = append(s.anySegment, e)
		return
	}
	if s.bySegment == nil {
		s.bySegment = map[string][]ruleEntry{}
	}
	s.bySegment[seg] = append(s.bySegment[seg], e)
}

func (s *ruleSet) match(r *Request) *Route {
	if s.small != nil {
		for _, rt := range s.small {
			if rt.matcher.match(r) {
				return rt
			}
		}
		return nil
	}
	var bound []ruleEntry
	if len(s.bySegment) > 0 {
		bound = s.bySegment[firstSegment(r.Path)]
	}
	anySeg := s.anySegment
	for len(bound) > 0 || len(anySeg) > 0 {
		var e ruleEntry
		if len(anySeg) == 0 || (len(bound) > 0 && bound[0].pos < anySeg[0].pos) {
			e, bound = bound[0], bound[1:]
		} else {
			e, anySeg = anySeg[0], anySeg[1:]
		}
		if e.rt.matcher.match(r) {
			return e.rt
		}
	}
	return nil
}

// segment returns the first path segment every path this matcher accepts
// starts with, or false when it can accept paths with any first segment.
func (p *pathMatcher) segment() (string, bool) {
	switch p.kind {
	case pathExact:
		return firstSegment(p.value), true
	case pathPrefix:
		if p.value == "" {
			return "", false
		}
		// With segment semantics, a path under "/foo/bar" or "/foo" starts
		// with the whole first segment "foo".
		return firstSegment(p.value), true
	}
	return "", false
}

// firstSegment returns the text between the leading '/' and the next one:
// "/foo/bar" -> "foo", "/" -> "", "/foo" -> "foo".
func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}
