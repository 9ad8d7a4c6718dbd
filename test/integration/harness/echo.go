package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Echo is the part of echo-basic's JSON reply the tests check.
type Echo struct {
	Path      string `json:"path"`
	Host      string `json:"host"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
}

// Reply is one response through the gateway.
type Reply struct {
	Status int
	Echo   Echo // zero unless Status is 200 and the body is echo JSON
	Body   string
}

// NewClient returns an HTTP client that opens a fresh connection for every
// request, so that each request sees the configuration being served at that
// moment (and a listener that went away shows as an error).
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get sends GET http://addr{path} with the Host header host.
func Get(ctx context.Context, client *http.Client, addr, host, path string) (Reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return Reply{}, err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Reply{}, fmt.Errorf("read body: %w", err)
	}
	r := Reply{Status: resp.StatusCode, Body: string(body)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r.Echo); err != nil {
			return r, fmt.Errorf("decode echo reply %q: %w", body, err)
		}
	}
	return r, nil
}

// EchoYAML is a Deployment of echo-basic and its Service (port 8080 to the
// pods' 3000), with placeholders @NS@, @NAME@ and @REPLICAS@. The
// integration tests and bench/propagation both deploy it.
const EchoYAML = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: @NAME@, namespace: @NS@}
spec:
  replicas: @REPLICAS@
  selector: {matchLabels: {app: @NAME@}}
  template:
    metadata: {labels: {app: @NAME@}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
        ports: [{name: http, containerPort: 3000}]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: @NAME@, namespace: @NS@}
spec:
  selector: {app: @NAME@}
  ports: [{name: http, port: 8080, targetPort: 3000}]
`
