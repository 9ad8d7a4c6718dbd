// Command reload measures how fast a manifest change reaches traffic in
// `rauta run`, and whether any request fails meanwhile: it starts rauta on a
// folder, then N times writes a file that adds a route and polls the new path
// every millisecond until it answers 200, while a steady load on an existing
// route counts every non-200.
//
//	go run ./bench/reload -rauta bin/rauta -n 50
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/false-systems/rauta/internal/echo"

	"github.com/false-systems/rauta/internal/freeport"
)

func main() {
	bin := flag.String("rauta", "bin/rauta", "rauta binary")
	n := flag.Int("n", 50, "route changes to time")
	flag.Parse()
	if err := run(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "reload:", err)
		os.Exit(1)
	}
}

func freePort() (int, error) {
	return freeport.Port()
}

const base = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: %d, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: ["127.0.0.1"]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: steady}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /steady}}], backendRefs: [{name: echo, port: 80}]}]
`

const route = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r%d}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /r%d}}], backendRefs: [{name: echo, port: 80}]}]
`

func run(bin string, n int) error {
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	backend := echo.NewServer("", echo.Handler("echo"))
	go func() { _ = backend.Serve(backendLn) }()
	defer backend.Close()

	gwPort, err := freePort()
	if err != nil {
		return err
	}
	adminPort, err := freePort()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "rauta-reload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	manifest := fmt.Sprintf(base, gwPort, backendLn.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(manifest), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "run", "-f", dir, "-address", "127.0.0.1",
		"-admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPort), "-metrics-addr=", "-drain-period=0s", "-access-log=false", "-log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := func(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", gwPort, path) }
	status := func(path string) int {
		resp, err := client.Get(url(path))
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := waitFor(10*time.Second, func() bool { return status("/steady") == 200 }); err != nil {
		return fmt.Errorf("gateway never served /steady: %w", err)
	}

	// Steady load: 4 workers on /steady for the whole run, every non-200 counted.
	ctx, stop := context.WithCancel(context.Background())
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				sent.Add(1)
				if status("/steady") != 200 {
					failed.Add(1)
				}
			}
		}()
	}

	var lat []time.Duration
	for i := range n {
		start := time.Now()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d.yaml", i)), fmt.Appendf(nil, route, i, i), 0o644); err != nil {
			stop()
			return err
		}
		if err := waitFor(5*time.Second, func() bool { return status(fmt.Sprintf("/r%d", i)) == 200 }); err != nil {
			stop()
			return fmt.Errorf("route r%d never answered: %w", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	stop()
	wg.Wait()

	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("file change -> first 200 over %d route additions: p50 %v  p90 %v  p99 %v  max %v\n",
		n, pct(0.5).Round(100*time.Microsecond), pct(0.9).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	fmt.Printf("steady load during the reloads: %d requests, %d failed\n", sent.Load(), failed.Load())
	if failed.Load() > 0 {
		return errors.New("requests failed during reloads")
	}
	return nil
}

func waitFor(limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("not within %v", limit)
}
