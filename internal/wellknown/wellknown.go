// Package wellknown holds the names and numbers RAUTA's parts agree on
// across a process boundary: the controllerName of the GatewayClasses RAUTA
// owns, and the layout of a provisioned data-plane pod, which the
// provisioner writes into the pod spec and the data plane takes as its
// defaults. It imports nothing but time, so that the data plane binary
// (cmd/rauta-dataplane) can share them without the Kubernetes API types of
// the packages that write the spec.
package wellknown

import "time"

// DefaultControllerName is the controllerName of GatewayClasses RAUTA owns.
const DefaultControllerName = "rauta.io/gateway-controller"

// Data-plane pod layout.
const (
	// LowPortOffset shifts listener ports below 1024 in the pod: a
	// non-root pod binds 80 as 10080 and the Service maps 80 to it (the
	// same rule as Envoy Gateway's).
	LowPortOffset = 10000
	// AdminPort (loopback) and MetricsPort (/metrics, /healthz, /readyz)
	// of the data plane.
	AdminPort   = 19000
	MetricsPort = 19001
	// TokenDir holds the data plane's bound token.
	TokenDir = "/var/run/secrets/rauta.io"
)

// The data plane's default -drain-period and -shutdown-timeout; the
// provisioner sizes a pod's terminationGracePeriodSeconds to exceed their
// sum.
const (
	DrainPeriod     = 5 * time.Second
	ShutdownTimeout = 25 * time.Second
)
