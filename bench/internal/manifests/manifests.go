// Package manifests writes the Kubernetes objects the benchmarks give
// `rauta run -f`: backends on loopback as a Service and its EndpointSlices.
package manifests

import (
	"fmt"
	"strings"
)

// LoopbackService is a Service listening on port 80 whose endpoints are
// 127.0.0.1 at each of ports, each in an EndpointSlice of its own (an
// EndpointSlice has one port list, and the ports differ). With one port
// the slice is named like the Service, with more name-1, name-2, ...
// Every document starts with "---".
func LoopbackService(name string, ports ...int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: default
spec:
  ports:
  - name: http
    port: 80
`, name)
	for i, port := range ports {
		slice := name
		if len(ports) > 1 {
			slice = fmt.Sprintf("%s-%d", name, i+1)
		}
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s
  namespace: default
  labels:
    kubernetes.io/service-name: %s
addressType: IPv4
ports:
- name: http
  port: %d
endpoints:
- addresses: ["127.0.0.1"]
`, slice, name, port)
	}
	return b.String()
}
