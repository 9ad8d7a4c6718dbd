package integration

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
	"github.com/false-systems/rauta/test/integration/harness"
)

// sample sends n requests and returns how many each pod answered. Any
// answer other than 200 from the namespace ns is an error.
func sample(ctx context.Context, addr, host, path, ns string, n int) (map[string]int, error) {
	client := harness.NewClient(2 * time.Second)
	seen := make(map[string]int)
	for range n {
		r, err := harness.Get(ctx, client, addr, host, path)
		if err != nil {
			return seen, err
		}
		if r.Status != 200 {
			return seen, fmt.Errorf("GET %s%s (Host %s): %d %q", addr, path, host, r.Status, r.Body)
		}
		if r.Echo.Namespace != ns || r.Echo.Path != path {
			return seen, fmt.Errorf("reply from namespace %q for path %q, want %q %q", r.Echo.Namespace, r.Echo.Path, ns, path)
		}
		seen[r.Echo.Pod]++
	}
	return seen, nil
}

// waitServedBy waits until requests to host/path through addr succeed and
// are answered by exactly the pods in want (every one of them, no other).
func waitServedBy(ctx context.Context, t *testing.T, addr, host, path, ns string, want []string) {
	t.Helper()
	waitServedByWithin(ctx, t, 30*time.Second, addr, host, path, ns, want)
}

// waitServedByWithin is waitServedBy with its own deadline.
func waitServedByWithin(ctx context.Context, t *testing.T, within time.Duration, addr, host, path, ns string, want []string) {
	t.Helper()
	sort.Strings(want)
	poll.NoError(t, within, fmt.Sprintf("traffic to %s%s served by %v", host, path, want), func() error {
		seen, err := sample(ctx, addr, host, path, ns, 8*len(want))
		if err != nil {
			return err
		}
		got := slices.Sorted(maps.Keys(seen))
		if !slices.Equal(got, want) {
			return fmt.Errorf("answered by %v", seen)
		}
		return nil
	})
}

// waitStatus waits until host/path through addr answers with code.
func waitStatus(ctx context.Context, t *testing.T, addr, host, path string, code int) {
	t.Helper()
	client := harness.NewClient(2 * time.Second)
	poll.NoError(t, 30*time.Second, fmt.Sprintf("%s%s answering %d", host, path, code), func() error {
		r, err := harness.Get(ctx, client, addr, host, path)
		if err != nil {
			return err
		}
		if r.Status != code {
			return fmt.Errorf("status %d: %q", r.Status, r.Body)
		}
		return nil
	})
}

// hostPort joins a gateway address and a listener port.
func hostPort(addr string, port int) string { return net.JoinHostPort(addr, fmt.Sprint(port)) }
