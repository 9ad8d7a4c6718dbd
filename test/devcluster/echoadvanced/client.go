package echoadvanced

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// ClientConfig holds the client's arguments, named as Istio's echo client names them.
type ClientConfig struct {
	URL     string
	Method  string // --method, default GET
	Headers []string
	Count   int           // --count, default 1
	Timeout time.Duration // --timeout per request, default 5s
	QPS     int           // --qps, 0: as fast as possible
	HTTP2   bool          // --http2: HTTP/2 (prior knowledge for http://)
	// Insecure skips verifying an https server's certificate (--insecure-skip-verify).
	Insecure bool
	// MaxBody bounds how much of each response body is printed, default 1 MiB.
	MaxBody int64
}

// MaxCount bounds --count: the suite asks for at most a few hundred.
const MaxCount = 10000

// Run sends cfg.Count requests one after another, printing each response as Istio's
// forwarder does, followed by a blank line. Redirects are not followed (the tests check
// the redirect's status). It returns an error naming the first request that failed
// (Istio's client exits non-zero then); responses before it are printed.
func Run(ctx context.Context, cfg ClientConfig, out io.Writer) error {
	if cfg.Count <= 0 {
		cfg.Count = 1
	}
	if cfg.Count > MaxCount {
		return fmt.Errorf("--count %d: at most %d", cfg.Count, MaxCount)
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return fmt.Errorf("url %q: %w", cfg.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q: scheme %q is not supported (http, https)", cfg.URL, u.Scheme)
	}
	header := http.Header{}
	host := ""
	for _, h := range cfg.Headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("header %q: want key:value", h)
		}
		if strings.EqualFold(k, "Host") {
			host = v
			continue
		}
		header.Add(k, v)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: cfg.Insecure}, //nolint:gosec // a test client asked to, like Istio's
		TLSHandshakeTimeout: cfg.Timeout,
		MaxIdleConnsPerHost: 1,
	}
	if cfg.HTTP2 {
		// A custom dialer and TLS config turn HTTP/2 off unless forced.
		tr.ForceAttemptHTTP2 = true
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP2(true)
		if u.Scheme == "http" {
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var tick *time.Ticker
	if cfg.QPS > 0 {
		tick = time.NewTicker(time.Second / time.Duration(cfg.QPS))
		defer tick.Stop()
	}
	for i := range cfg.Count {
		if tick != nil && i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := doRequest(ctx, client, cfg, u, header, host, i, out); err != nil {
			return fmt.Errorf("request %d to %s: %w", i, cfg.URL, err)
		}
	}
	return nil
}

func doRequest(ctx context.Context, client *http.Client, cfg ClientConfig, u *url.URL, header http.Header, host string, id int, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, cfg.Method, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header = header.Clone()
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, cfg.MaxBody))
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read body: %w", err)
	}
	var b strings.Builder
	writeRequestField(&b, id, FieldForwarderURL, u.String())
	if host != "" {
		writeRequestField(&b, id, FieldForwardHeader, "Host:"+host)
	}
	for _, k := range sortedKeys(header) {
		for _, v := range header[k] {
			writeRequestField(&b, id, FieldForwardHeader, k+":"+v)
		}
	}
	writeRequestField(&b, id, FieldStatusCode, fmt.Sprint(resp.StatusCode))
	for _, k := range sortedKeys(resp.Header) {
		for _, v := range resp.Header[k] {
			writeRequestField(&b, id, FieldResponseHeader, k+":"+v)
		}
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if line != "" {
			writeBodyLine(&b, id, line)
		}
	}
	b.WriteString("\n")
	_, err = io.WriteString(out, b.String())
	return err
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
