// Package echoadvanced is a compatible stand-in for the conformance image
// registry.k8s.io/gateway-api/echo-advanced, which is Istio's echo app (the server, and
// its `client` that the mesh conformance tests run inside an echo pod through exec).
// It implements what sigs.k8s.io/gateway-api/conformance/utils/echo reads: the server
// answers HTTP requests with Istio's "Field=value" lines, and the client prints each
// response as Istio's forwarder does ("[N] StatusCode=...", "[N] ResponseHeader=K:V",
// "[N body] <line>"), responses separated by a blank line.
//
// Istio's module is not built here: it pulls in Envoy's control plane and much more, and
// the registry serves it only as an unreleased pseudo-version. What is left out: the gRPC
// echo service (the grpc ports serve the HTTP echo, with HTTP/2 prior knowledge), the
// forwarding API of the server, and client flags the suite does not use.
package echoadvanced

import (
	"fmt"
	"io"
)

// Field names, as Istio's echo writes them and conformance/utils/echo parses them.
const (
	FieldServiceVersion = "ServiceVersion"
	FieldServicePort    = "ServicePort"
	FieldStatusCode     = "StatusCode"
	FieldURL            = "URL"
	FieldForwarderURL   = "Url"
	FieldHost           = "Host"
	FieldHostname       = "Hostname"
	FieldMethod         = "Method"
	FieldProto          = "Proto"
	FieldAlpn           = "Alpn"
	FieldIP             = "IP"
	FieldCluster        = "Cluster"
	FieldNamespace      = "Namespace"
	FieldRequestHeader  = "RequestHeader"
	FieldResponseHeader = "ResponseHeader"
	FieldForwardHeader  = "Header"
)

// writeField writes "name=value\n", the server's body line.
func writeField(w io.Writer, name, value string) {
	fmt.Fprintf(w, "%s=%s\n", name, value)
}

// writeRequestField writes "[id] name=value\n", the client's line about request id.
func writeRequestField(w io.Writer, id int, name, value string) {
	fmt.Fprintf(w, "[%d] %s=%s\n", id, name, value)
}

// writeBodyLine writes "[id body] line\n", one line of the response body.
func writeBodyLine(w io.Writer, id int, line string) {
	fmt.Fprintf(w, "[%d body] %s\n", id, line)
}
