package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeTimeout is the kubelet's default probe timeout when timeoutSeconds is unset.
const probeTimeout = time.Second

// checkProbe validates the parts of a probe the agent can run.
func checkProbe(p *corev1.Probe) error {
	switch {
	case p.HTTPGet != nil, p.TCPSocket != nil:
		return nil
	case p.Exec != nil:
		return fmt.Errorf("exec probes are not supported by the devcluster node")
	case p.GRPC != nil:
		return fmt.Errorf("grpc probes are not supported by the devcluster node")
	default:
		return fmt.Errorf("probe has no handler")
	}
}

// probeOnce runs one HTTP GET or TCP probe against the pod's address, from the host
// through the bridge: the same path the kubelet's probes take on a real node.
func probeOnce(ctx context.Context, p *corev1.Probe, c *corev1.Container, podIP string) error {
	timeout := probeTimeout
	if p.TimeoutSeconds > 0 {
		timeout = time.Duration(p.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		return probeHTTP(ctx, p.HTTPGet, c, podIP)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		host := podIP
		if p.TCPSocket.Host != "" {
			host = p.TCPSocket.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	default:
		return checkProbe(p)
	}
}

func probeHTTP(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) error {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return err
	}
	host := podIP
	if g.Host != "" {
		host = g.Host
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	full := u.String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return fmt.Errorf("probe url %q: %w", full, err)
	}
	req.Header.Set("User-Agent", "kube-probe/1.36")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	// Like the kubelet: HTTPS probes do not verify certificates, redirects are not
	// followed, and each probe uses a fresh connection.
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet semantics
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("http probe %s: status %d", full, resp.StatusCode)
	}
	return nil
}

// resolvePort turns a probe's port (number or container port name) into a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("probe port %d out of range", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("probe port %q names no port of container %q", p.StrVal, c.Name)
}

// prober runs a readiness probe on its schedule and reports each change of the result.
type prober struct {
	probe     *corev1.Probe
	container *corev1.Container
	podIP     string
	report    func(ready bool, err error)
}

func (p *prober) run(ctx context.Context) {
	period := 10 * time.Second
	if p.probe.PeriodSeconds > 0 {
		period = time.Duration(p.probe.PeriodSeconds) * time.Second
	}
	success, failure := int(p.probe.SuccessThreshold), int(p.probe.FailureThreshold)
	if success <= 0 {
		success = 1
	}
	if failure <= 0 {
		failure = 3
	}
	if d := time.Duration(p.probe.InitialDelaySeconds) * time.Second; d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
	ready := false
	okRun, failRun := 0, 0
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		err := probeOnce(ctx, p.probe, p.container, p.podIP)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			okRun, failRun = okRun+1, 0
			if !ready && okRun >= success {
				ready = true
				p.report(true, nil)
			}
		} else {
			okRun, failRun = 0, failRun+1
			// Not ready until the first success; after that, only failureThreshold
			// consecutive failures take readiness away.
			if ready && failRun >= failure {
				ready = false
				p.report(false, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
