// Package objstatus holds Problem: one condition of an object's status that
// says something is wrong, in plain strings. The translator lists them
// (translate.Status.Problems) and the gateway logs each once, when it
// appears. It sits apart from both so that package gateway, and with it the
// data plane binary (cmd/rauta-dataplane), needs no Kubernetes API types.
package objstatus

// Problem is comparable: a set of them tells a new problem from one already
// reported. It holds no generation or transition time, so the same problem
// at a new generation is the same Problem.
type Problem struct {
	// Kind and Name ("namespace/name", or a cluster-scoped name) say which
	// object; Part which part of its status ("listener http", "parent gw"),
	// empty for the object's own conditions.
	Kind, Name, Part string
	// Type, Status, Reason and Message are the condition's.
	Type, Status, Reason, Message string
}
