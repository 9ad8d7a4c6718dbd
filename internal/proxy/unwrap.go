package proxy

import "net/http"

// underWriter returns the first of w and the ResponseWriters it wraps
// (through Unwrap, as http.ResponseController looks) that is a T.
func underWriter[T any](w http.ResponseWriter) (T, bool) {
	for {
		if t, ok := w.(T); ok {
			return t, true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			var zero T
			return zero, false
		}
		w = u.Unwrap()
	}
}
