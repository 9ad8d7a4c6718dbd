package main

import (
	"encoding/base64"
	"fmt"
	"os"

	"github.com/false-systems/rauta/bench/internal/manifests"
)

// rautaExtraListeners are the Gateway listeners of the issue 18 cells, in
// the order of nginxExtraServers: HTTPS with the RSA certificate, gRPC
// (h2c by prior knowledge on an HTTP listener) and WebSocket.
func rautaExtraListeners() string {
	return fmt.Sprintf(`  - name: https-rsa
    port: %d
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs:
      - name: bench-cert-rsa
  - name: grpc
    port: %d
    protocol: HTTP
  - name: ws
    port: %d
    protocol: HTTP
`, httpsRSAPort, grpcPort, wsPort)
}

// rautaExtraManifests: the RSA Secret, a GRPCRoute to the Go gRPC backend
// (GRPCRoute backends are spoken to over h2c) and an HTTPRoute to the
// WebSocket echo, each on its own listener.
func (e *env) rautaExtraManifests() (string, error) {
	c, err := os.ReadFile(e.rsaCert)
	if err != nil {
		return "", err
	}
	k, err := os.ReadFile(e.rsaKey)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata:
  name: bench-cert-rsa
  namespace: default
type: kubernetes.io/tls
data:
  tls.crt: %s
  tls.key: %s
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: grpc
  namespace: default
spec:
  parentRefs:
  - name: bench
    sectionName: grpc
  rules:
  - backendRefs:
    - name: grpc-backend
      port: 80
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ws
  namespace: default
spec:
  parentRefs:
  - name: bench
    sectionName: ws
  rules:
  - backendRefs:
    - name: ws-backend
      port: 80
`, base64.StdEncoding.EncodeToString(c), base64.StdEncoding.EncodeToString(k)) +
		manifests.LoopbackService("grpc-backend", goGRPCPort) + manifests.LoopbackService("ws-backend", goWSPort), nil
}
