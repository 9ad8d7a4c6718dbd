package router

import (
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// ruleSet holds the routes one hostname group can reach, in precedence
// order. A group of more than smallRuleSet routes is also bucketed by first
// path segment so that a table of many routes scans only those that could
// match: each bucket is the ordered subsequence of the routes that are either
// bound to that segment or can match any segment, so the first match in a
// bucket is the first match in the full list. Most groups (a hostname per
// team or service) hold a few routes; for them the buckets cost more to
// build and to look up than scanning the routes does, so they have none.
type ruleSet struct {
	// all is every route of the group, in order.
	all       []*Route
	bySegment map[string][]*Route
	// anySegment holds the routes that can match any first segment (regex
	// paths, the prefix "/"); it is the list for segments without a bucket.
	anySegment []*Route
}

// smallRuleSet is the most routes a group scans without segment buckets.
const smallRuleSet = 8

func (s *ruleSet) add(r *Route) {
	s.all = append(s.all, r)
	switch {
	case len(s.all) <= smallRuleSet:
		return
	case len(s.all) == smallRuleSet+1:
		for _, rt := range s.all {
			s.bucket(rt)
		}
	default:
		s.bucket(r)
	}
}

// bucket adds r to the segment buckets.
func (s *ruleSet) bucket(r *Route) {
	seg, bound := r.matcher.path.segment()
	if !bound {
		s.anySegment = append(s.anySegment, r)
		for k, list := range s.bySegment {
			s.bySegment[k] = append(list, r)
		}
		return
	}
	if s.bySegment == nil {
		s.bySegment = map[string][]*Route{}
	}
	list, ok := s.bySegment[seg]
	if !ok {
		// The routes for any segment added so far precede this one.
		list = append([]*Route(nil), s.anySegment...)
	}
	s.bySegment[seg] = append(list, r)
}

func (s *ruleSet) match(r *Request) *Route {
	list := s.all
	if len(s.all) > smallRuleSet {
		list = s.anySegment
		if len(s.bySegment) > 0 {
			if l, ok := s.bySegment[firstSegment(r.Path)]; ok {
				list = l
			}
		}
	}
	for _, rt := range list {
		if rt.matcher.match(r) {
			return rt
		}
	}
	return nil
}

// segment returns the first path segment every path this matcher accepts
// starts with, or false when it can accept paths with any first segment.
func (p *pathMatcher) segment() (string, bool) {
	switch p.kind {
	case ir.PathExact:
		return firstSegment(p.value), true
	case ir.PathPrefix:
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
