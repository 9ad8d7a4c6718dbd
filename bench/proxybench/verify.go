package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/false-systems/rauta/bench/internal/procgroup"
)

// checker sends real requests over HTTP/1.1 and over HTTP/2 with TLS and
// compares status and body with the files the backend serves.
type checker struct {
	h1, h2 *http.Client
	bodies map[string][]byte
}

func newChecker(certFile string, bodies map[string][]byte) (*checker, error) {
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("certificate %s: no PEM certificate", certFile)
	}
	h1 := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}
	h2 := &http.Transport{DisableCompression: true, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4,
		TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}}}
	return &checker{
		h1:     &http.Client{Transport: h1, Timeout: 5 * time.Second},
		h2:     &http.Client{Transport: h2, Timeout: 5 * time.Second},
		bodies: bodies,
	}, nil
}

func (c *checker) close() {
	c.h1.CloseIdleConnections()
	c.h2.CloseIdleConnections()
}

// get fetches url and checks status 200, the protocol and the body. It
// returns the X-Backend header, which names the endpoint that answered.
func (c *checker) get(ctx context.Context, client *http.Client, url string, protoMajor int, want []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return "", fmt.Errorf("GET %s: read body: %w", url, err)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("GET %s: status %d, want 200", url, resp.StatusCode)
	case resp.ProtoMajor != protoMajor:
		return "", fmt.Errorf("GET %s: answered over %s, want HTTP/%d", url, resp.Proto, protoMajor)
	case !bytes.Equal(body, want):
		return "", fmt.Errorf("GET %s: body of %d bytes differs from the backend's %d-byte file", url, len(body), len(want))
	}
	return resp.Header.Get("X-Backend"), nil
}

// verify checks every body over both protocols and an upload over
// HTTP/1.1 and, for proxies, that requests are spread over all three
// endpoints (the same job for everyone).
func (c *checker) verify(ctx context.Context, ct *contender) error {
	defer c.close()
	seen := map[string]bool{}
	for _, name := range []string{"1k", "64k"} {
		want := c.bodies[name]
		for i := 0; i < 4*endpoints; i++ {
			b1, err := c.get(ctx, c.h1, ct.H1URL+"/"+name, 1, want)
			if err != nil {
				return fmt.Errorf("HTTP/1.1: %w", err)
			}
			b2, err := c.get(ctx, c.h2, ct.H2URL+"/"+name, 2, want)
			if err != nil {
				return fmt.Errorf("HTTP/2: %w", err)
			}
			seen[b1], seen[b2] = true, true
		}
	}
	// The upload cell's POST, answered only once the backend has the whole body.
	for i := 0; i < endpoints; i++ {
		b, err := c.upload(ctx, ct.H1URL+uploadPath, uploadSize)
		if err != nil {
			return fmt.Errorf("HTTP/1.1: %w", err)
		}
		seen[b] = true
	}
	if ct.Balanced {
		for i := 1; i <= endpoints; i++ {
			if !seen[fmt.Sprint(i)] {
				got := make([]string, 0, len(seen))
				for k := range seen {
					got = append(got, k)
				}
				slices.Sort(got)
				return fmt.Errorf("endpoint %d never answered in %d requests (X-Backend seen: %q)", i, 17*endpoints, got)
			}
		}
	}
	return nil
}

// waitReady polls the contender's HTTP/1.1 URL until it answers 200, the
// process exits, or the deadline passes.
func (c *checker) waitReady(ctx context.Context, ct *contender, p *procgroup.Proc, d time.Duration) error {
	defer c.close()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if p != nil {
			if done, err := p.Exited(); done {
				return fmt.Errorf("exited during start-up (%w); log %s: %s", err, p.Log, fileTail(p.Log, 600))
			}
		}
		if _, last = c.get(ctx, c.h1, ct.H1URL+"/1k", 1, c.bodies["1k"]); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %w", d, last)
}

func fileTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return tail(b, n)
}
