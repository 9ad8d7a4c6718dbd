package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"github.com/false-systems/rauta/internal/reqtiming"
)

// PollOptions say where and how often to fetch records.
type PollOptions struct {
	// URL is the gateway's admin base URL (http://127.0.0.1:9901).
	URL string
	// Netns, when set, is the network namespace path whose loopback the
	// admin port listens on; connections are made from inside it.
	Netns string
	// Interval between fetches; Limit records at most per fetch.
	Interval time.Duration
	Limit    int
	// After is the cursor to start from: the last sequence number an
	// earlier poller of the same gateway took (0: every record held).
	After uint64
	// Probe: return at the first failed fetch (Discover restarts it on
	// its next scan); failures before the first answer are not counted:
	// most probed namespaces hold no gateway.
	Probe bool
}

// Poll fetches the gateway's records every Interval until ctx ends (or,
// probing, a fetch fails) and offers them to j. It returns the cursor
// reached. Failures are counted and logged at debug level: the gateway
// may not be up yet, or may be restarting.
func Poll(ctx context.Context, o PollOptions, j *Joiner, logger *slog.Logger) uint64 {
	tr := &http.Transport{MaxIdleConns: 1, IdleConnTimeout: time.Minute}
	if o.Netns != "" {
		path := o.Netns
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, path, network, addr)
		}
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	base := strings.TrimSuffix(o.URL, "/") + "/debug/requests?limit=" + strconv.Itoa(o.Limit) + "&after="
	after := o.After
	answered := false
	defer func() {
		if answered {
			j.answering.Add(-1)
		}
	}()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return after
		case <-tick.C:
		}
		for range 16 { // drain a backlog, within bounds
			page, err := fetch(ctx, client, base+strconv.FormatUint(after, 10))
			if err != nil {
				if ctx.Err() == nil && (answered || !o.Probe) {
					j.PollFailed()
					logger.Debug("gateway timing records", "url", o.URL, "netns", o.Netns, "err", err)
				}
				if o.Probe {
					return after
				}
				break
			}
			if !answered {
				answered = true
				j.answering.Add(1)
			}
			if page.Next < after {
				after = 0 // the gateway restarted
				continue
			}
			if len(page.Records) > 0 {
				after = page.Records[len(page.Records)-1].Seq
				j.Offer(page.Records)
			}
			if after >= page.Next {
				break
			}
		}
	}
}

func fetch(ctx context.Context, c *http.Client, url string) (*reqtiming.Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	var p reqtiming.Page
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// dialIn connects from inside the network namespace at path: the socket
// keeps its namespace after the thread returns to its own.
func dialIn(ctx context.Context, path, network, addr string) (net.Conn, error) {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %q: %w", path, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter network namespace %q: %w", path, err)
	}
	// A plain dial, so that the socket is made on this thread.
	d := net.Dialer{Timeout: 5 * time.Second}
	c, derr := d.DialContext(ctx, network, addr)
	if serr := netns.Set(orig); serr != nil {
		// Stuck in the wrong namespace: the thread stays locked and is
		// discarded with its goroutine.
		if c != nil {
			c.Close()
		}
		return nil, errors.Join(derr, fmt.Errorf("return from network namespace %q: %w", path, serr))
	}
	runtime.UnlockOSThread()
	return c, derr
}
