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
