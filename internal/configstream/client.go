package configstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Client is the data plane's side: it keeps a stream to the controller open,
// hands every Config to Apply and posts Apply's Report back. While the
// controller is away the last applied Config keeps serving: Client never
// un-applies anything.
type Client struct {
	// Address is the controller's host:port.
	Address string
	// ServerName is the name the controller's certificate must hold.
	ServerName string
	// RootCAs verifies the controller's certificate.
	RootCAs *x509.CertPool
	// TokenFile holds the bound ServiceAccount token; it is read again for
	// every request, as the kubelet rotates it.
	TokenFile string
	// Gateway ("namespace/name") and Pod identify this data plane.
	Gateway, Pod string
	// Apply serves a Config and says how that went.
	Apply func(Config) Report
	// OnError is told why a stream ended or a report failed (for logs);
	// nil ignores it. Neither stops serving the last applied Config.
	OnError func(error)
	// Heartbeat is the controller's heartbeat interval; a stream silent for
	// three of them is dropped and dialled again. 0 means 10 s.
	Heartbeat time.Duration
	// MaxConfigBytes bounds one Config on the wire; 0 means 64 MiB.
	MaxConfigBytes int

	http *http.Client
}

// Run keeps the stream alive until ctx ends, reconnecting with jittered
// backoff (250 ms doubling to 10 s, reset after a stream that delivered).
func (c *Client) Run(ctx context.Context) error {
	if c.Address == "" || c.Gateway == "" || c.Apply == nil {
		return errors.New("config stream client: Address, Gateway and Apply are required")
	}
	c.http = &http.Client{Transport: &http.Transport{
		// A controller address that drops packets (its pod gone, a
		// partition) fails the dial in bounded time, not after the
		// kernel's SYN retries (minutes).
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: c.RootCAs, ServerName: c.ServerName, MinVersion: tls.VersionTLS13},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		// The stream is long-lived; a response head slower than this
		// means a controller that is not serving.
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   2,
	}}
	defer c.http.CloseIdleConnections()
	backoff := 250 * time.Millisecond
	resynced := false
	for {
		delivered, err := c.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if c.OnError != nil && err != nil {
			c.OnError(err)
		}
		// A resync streams again at once, but only once in a row: a
		// stream's first Config elides nothing, so a second one means
		// something else is wrong.
		if errors.Is(err, errResync) && !resynced {
			resynced = true
			continue
		}
		resynced = false
		if delivered {
			backoff = 250 * time.Millisecond
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (c *Client) token() (string, error) {
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *Client) url(path string, q url.Values) string {
	u := url.URL{Scheme: "https", Host: c.Address, Path: path, RawQuery: q.Encode()}
	return u.String()
}

// stream runs one stream until it fails; delivered says whether it brought
// at least one Config.
func (c *Client) stream(ctx context.Context) (delivered bool, err error) {
	token, err := c.token()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.url(StreamPath, url.Values{"gateway": {c.Gateway}, "pod": {c.Pod}, "deltas": {"1"}}), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("open config stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return false, fmt.Errorf("open config stream: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}

	heartbeat := c.Heartbeat
	if heartbeat <= 0 {
		heartbeat = 10 * time.Second
	}
	// A stream silent for three heartbeats is dead (a controller that went
	// away without closing, a network partition).
	watchdog := time.AfterFunc(3*heartbeat, cancel)
	defer watchdog.Stop()

	limit := c.MaxConfigBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		return false, fmt.Errorf("open config stream: content type %q, want %q (a controller of another version?)", ct, ContentType)
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	var dec frameDecoder
	// Reports go out beside the stream, never in its way: a controller
	// slow to answer one must not hold back the next Config (a pod that
	// just started would serve its first one, often without endpoints yet,
	// until the report came back).
	reports := newReporter()
	go reports.run(ctx, c)
	// The stream's context ends before the wait: no report outlives it.
	defer func() { cancel(); reports.wait() }()
	for {
		m, err := dec.read(rd, limit)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("config stream silent for %s: %w", 3*heartbeat, err)
			}
			return delivered, err
		}
		watchdog.Reset(3 * heartbeat)
		if m.Config == nil {
			continue
		}
		delivered = true
		rep := c.Apply(*m.Config)
		if rep.Resync {
			// Nothing was applied, so there is nothing to report: the
			// next stream's whole Config is.
			return delivered, errResync
		}
		rep.Gateway, rep.Pod = c.Gateway, c.Pod
		rep.Version, rep.Generation = m.Config.Version, m.Config.Generation
		reports.put(rep)
	}
}

// reporter posts one stream's Reports in order, latest wins: a Report not
// yet sent when a newer one comes is dropped, as it describes a Config no
// longer served. A failed post is retried (backoff 250 ms doubling to
// 10 s) until it succeeds, a newer Report replaces it or the stream ends.
type reporter struct {
	mu      sync.Mutex
	pending *Report
	wake    chan struct{}
	done    chan struct{}
}

func newReporter() *reporter {
	return &reporter{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (r *reporter) put(rep Report) {
	r.mu.Lock()
	r.pending = &rep
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) take() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := r.pending
	r.pending = nil
	return rep
}

// wait returns when run has returned (after its ctx ended).
func (r *reporter) wait() { <-r.done }

func (r *reporter) run(ctx context.Context, c *Client) {
	defer close(r.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		backoff := 250 * time.Millisecond
		for rep := r.take(); rep != nil; {
			err := c.report(ctx, *rep)
			if err == nil || ctx.Err() != nil {
				break
			}
			if c.OnError != nil {
				c.OnError(fmt.Errorf("config %s applied, its report not delivered (retrying; configs keep streaming): %w", rep.Version, err))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff/2 + rand.N(backoff/2+1)):
			}
			backoff = min(backoff*2, 10*time.Second)
			if newer := r.take(); newer != nil {
				rep = newer
			}
		}
	}
}

// errResync ends a stream whose Config elided a route the data plane does
// not have compiled (Report.Resync): a new stream starts with a whole
// Config, decoded by a new decoder, so nothing in it is elided.
var errResync = errors.New("config stream: a config elides routes not compiled here; streaming again from a whole config")

func (c *Client) report(ctx context.Context, rep Report) error {
	token, err := c.token()
	if err != nil {
		return err
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(ReportPath, nil), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("report: %s", resp.Status)
	}
	return nil
}
