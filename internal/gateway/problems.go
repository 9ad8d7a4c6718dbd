package gateway

import (
	"log/slog"

	"github.com/false-systems/rauta/internal/objstatus"
)

// Status is what a translation says about the objects it read
// (*translate.Status): /status serves it as JSON, and Apply logs each of its
// Problems once, when it appears. It is an interface so that this package,
// and the data plane binary built on it, needs no Kubernetes API types.
type Status interface {
	Problems() []objstatus.Problem
}

// NoStatus is the Status of a configuration that comes without one (the
// data plane's: the controller translated it and writes the status): it has
// no problems, and /status shows {}.
type NoStatus struct{}

// Problems returns none.
func (NoStatus) Problems() []objstatus.Problem { return nil }

// problemSet is st's problems as a set.
func problemSet(st Status) map[objstatus.Problem]bool {
	ps := st.Problems()
	out := make(map[objstatus.Problem]bool, len(ps))
	for _, p := range ps {
		out[p] = true
	}
	return out
}

// logNewProblems logs each problem of now that was not in before, so a
// problem is reported once when it appears, not at every translation.
func logNewProblems(logger *slog.Logger, before, now map[objstatus.Problem]bool) {
	for p := range now {
		if before[p] {
			continue
		}
		logger.Warn("status", "kind", p.Kind, "name", p.Name, "part", p.Part,
			"condition", p.Type, "status", p.Status, "reason", p.Reason, "message", p.Message)
	}
}
