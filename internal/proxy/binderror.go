package proxy

import "fmt"

// BindError is a listener whose socket could not be bound (the address is
// in use, not local, or needs privileges). Apply returns one per such
// listener, joined, while it serves the others; find them with errors.As.
type BindError struct {
	// Listener is the IR listener's name.
	Listener string
	Err      error
}

func (e *BindError) Error() string { return fmt.Sprintf("listener %q: %v", e.Listener, e.Err) }

func (e *BindError) Unwrap() error { return e.Err }

// BindErrors returns every BindError in err's tree (Apply joins them).
func BindErrors(err error) []*BindError {
	// The tree is walked node by node: errors.As would stop at the first.
	if be, ok := err.(*BindError); ok { //nolint:errorlint // see above
		return []*BindError{be}
	}
	switch u := err.(type) { //nolint:errorlint // see above
	case interface{ Unwrap() error }:
		return BindErrors(u.Unwrap())
	case interface{ Unwrap() []error }:
		var out []*BindError
		for _, e := range u.Unwrap() {
			out = append(out, BindErrors(e)...)
		}
		return out
	}
	return nil
}
