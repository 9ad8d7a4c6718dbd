package proxy

import "time"

// Dropping what removed routes and endpoints leave behind (their metric
// series, the passive-health state of endpoints no route names) waits until
// configuration changes pause. At a thousand routes it was more than half of
// an Apply, done after the new routes were live but while the first requests
// to them came in; deferred, a stream of changes pays for it once.
const (
	// tidyDelay is the pause after the last Apply.
	tidyDelay = 200 * time.Millisecond
	// tidyMaxDelay bounds how long continuous changes postpone it.
	tidyMaxDelay = 2 * time.Second
)

// scheduleTidy arranges for tidy to run tidyDelay after this Apply, or
// sooner when changes have postponed it for tidyMaxDelay. Callers hold s.mu.
func (s *Server) scheduleTidy(c *compiled) {
	s.tidyConfig = c
	now := time.Now()
	if s.tidyFirst.IsZero() {
		s.tidyFirst = now
	}
	switch {
	case s.tidyTimer == nil:
		s.tidyTimer = time.AfterFunc(tidyDelay, s.tidy)
	case now.Sub(s.tidyFirst) < tidyMaxDelay:
		s.tidyTimer.Reset(tidyDelay)
	}
}

// tidy forgets the metric series of routes and backends the served
// configuration no longer has, and the health state of its gone endpoints.
func (s *Server) tidy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.tidyConfig
	if c == nil || s.stopped {
		return
	}
	s.tidyConfig, s.tidyFirst = nil, time.Time{}
	s.forgetMetrics(c)
	endpoints := endpointSet(s.tables)
	s.registry.Prune(func(addr string) bool { return endpoints[addr] })
}
