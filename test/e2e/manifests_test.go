package e2e

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// The manifests below are what a user would write: Gateway API objects plus
// the Service and EndpointSlice that say where a backend listens.

const gatewayClassYAML = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: rauta
spec:
  controllerName: rauta.io/gateway-controller
`

// listenerSpec is one Gateway listener.
type listenerSpec struct {
	name     string
	port     int
	protocol string // HTTP or HTTPS
	hostname string // optional
	certs    []string
}

// gatewayYAML is the GatewayClass and a Gateway named name in "default".
func gatewayYAML(name string, listeners ...listenerSpec) string {
	var b strings.Builder
	b.WriteString(gatewayClassYAML)
	fmt.Fprintf(&b, `---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: %s
  namespace: default
spec:
  gatewayClassName: rauta
  listeners:
`, name)
	for _, l := range listeners {
		fmt.Fprintf(&b, "  - name: %s\n    port: %d\n    protocol: %s\n", l.name, l.port, l.protocol)
		if l.hostname != "" {
			fmt.Fprintf(&b, "    hostname: %q\n", l.hostname)
		}
		if len(l.certs) > 0 {
			b.WriteString("    tls:\n      mode: Terminate\n      certificateRefs:\n")
			for _, c := range l.certs {
				fmt.Fprintf(&b, "      - name: %s\n", c)
			}
		}
	}
	return b.String()
}

// httpGateway is a Gateway "gw" with one plain HTTP listener on port.
func httpGateway(port int) string {
	return gatewayYAML("gw", listenerSpec{name: "http", port: port, protocol: "HTTP"})
}

// serviceYAML is a Service name with port 80 ("http") and, when endpointPort
// is not 0, an EndpointSlice putting its endpoint at 127.0.0.1:endpointPort.
func serviceYAML(name string, endpointPort int) string {
	return serviceAppYAML(name, endpointPort, "")
}

// serviceAppYAML is serviceYAML with the port's appProtocol set (GEP-1911),
// e.g. "kubernetes.io/h2c"; "" leaves it out.
func serviceAppYAML(name string, endpointPort int, appProtocol string) string {
	s := fmt.Sprintf(`---
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
	if appProtocol != "" {
		s += "    appProtocol: " + appProtocol + "\n"
	}
	if endpointPort == 0 {
		return s
	}
	return s + fmt.Sprintf(`---
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
`, name, name, endpointPort)
}

// servicesYAML declares one Service per backend, named after it.
func servicesYAML(backends ...*backend) string {
	var b strings.Builder
	for _, be := range backends {
		b.WriteString(serviceYAML(be.name, be.port))
	}
	return b.String()
}

// secretYAML is a kubernetes.io/tls Secret.
func secretYAML(name string, certPEM, keyPEM []byte) string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: default
type: kubernetes.io/tls
data:
  tls.crt: %s
  tls.key: %s
`, name, base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM))
}

// routeYAML wraps rules (YAML indented for spec.rules) in an HTTPRoute
// attached to Gateway "gw".
func routeYAML(name string, hostnames []string, rules string) string {
	return kindRouteYAML("HTTPRoute", name, hostnames, rules)
}

// kindRouteYAML is routeYAML for a route kind with the same spec layout
// (HTTPRoute, GRPCRoute).
func kindRouteYAML(kind, name string, hostnames []string, rules string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `---
apiVersion: gateway.networking.k8s.io/v1
kind: %s
metadata:
  name: %s
  namespace: default
spec:
  parentRefs:
  - name: gw
`, kind, name)
	if len(hostnames) > 0 {
		b.WriteString("  hostnames:\n")
		for _, h := range hostnames {
			fmt.Fprintf(&b, "  - %q\n", h)
		}
	}
	b.WriteString("  rules:\n")
	b.WriteString(rules)
	return b.String()
}
