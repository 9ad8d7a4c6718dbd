package translate

import (
	"fmt"
	"sort"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// markOverlappingTLS sets OverlappingTLSConfig on HTTPS listeners of one
// Gateway that share a port and whose hostnames overlap ("*.example.com" and
// "a.example.com", or any hostname and none). The spec makes detecting this
// a MUST: a client that coalesces connections may send a request for one
// listener over a TLS session set up with the other's certificate. The
// condition only informs; both listeners keep serving.
func markOverlappingTLS(ls []*listenerState) {
	for i, a := range ls {
		if !overlapCandidate(a) {
			continue
		}
		for _, b := range ls[i+1:] {
			if !overlapCandidate(b) || a.spec.Port != b.spec.Port || !hostnamesOverlap(a.hostname, b.hostname) {
				continue
			}
			a.overlapping = append(a.overlapping, b.overlapName())
			b.overlapping = append(b.overlapping, a.overlapName())
		}
	}
}

func overlapCandidate(l *listenerState) bool {
	return l.spec.Protocol == gwv1.HTTPSProtocolType && l.accepted.ok && !l.conflicted.ok
}

// hostnamesOverlap reports whether some request hostname matches both
// listener hostnames. An empty hostname matches every name.
func hostnamesOverlap(a, b string) bool {
	if _, ok := intersectHostnames(a, b); ok {
		return true
	}
	_, ok := intersectHostnames(b, a)
	return ok
}

// overlapMessage describes the listeners one listener overlaps with.
func (l *listenerState) overlapMessage() string {
	names := append([]string(nil), l.overlapping...)
	sort.Strings(names)
	return fmt.Sprintf("hostname %q on port %d overlaps the hostnames of HTTPS listeners %s", displayHostname(l.hostname), l.spec.Port, strings.Join(names, ", "))
}

func displayHostname(h string) string {
	if h == "" {
		return "(any)"
	}
	return h
}

// overlapName names a listener in an overlap message: a Gateway's own by
// its name, as before ListenerSets, and a ListenerSet's qualified.
func (l *listenerState) overlapName() string {
	if l.set != nil {
		return l.set.key + "/" + string(l.spec.Name)
	}
	return string(l.spec.Name)
}
