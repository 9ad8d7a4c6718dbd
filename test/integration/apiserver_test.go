package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/false-systems/rauta/test/integration/harness"
)

// TestAPIServerOutage: while the API server is down the gateway keeps
// serving the last configuration; once it is back, the controller picks up a
// route change made after the outage and writes its status.
func TestAPIServerOutage(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, e, "outage")
	ctrl := e.startController(ctx, t, replica{controllerName: f.controllerName, lease: "it-outage", identity: "outage", pool: "127.0.3.0/24"})

	podsA := f.echo(ctx, t, "echo-a", 2)
	podsB := f.echo(ctx, t, "echo-b", 1)
	f.apply(ctx, t, httpGatewayYAML)
	f.route(ctx, t, "web", "web.example", "echo-a")
	addr := hostPort(e.waitGateway(ctx, t, f.ns, "gw", accepted, programmed), 80)
	waitServedBy(ctx, t, addr, "web.example", "/", f.ns, podsA)

	// Load runs from before the stop until the server is ready again.
	load := make(chan error, 1)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() { load <- steadyLoad(loadCtx, addr, "web.example", f.ns, podsA) }()

	if err := e.cluster.StopAPIServer(); err != nil {
		t.Fatalf("stop API server: %v", err)
	}
	// Long enough for watches to fail and the controller to notice.
	time.Sleep(8 * time.Second)
	if err := e.cluster.StartAPIServer(ctx); err != nil {
		t.Fatalf("start API server: %v", err)
	}
	stopLoad()
	if err := <-load; err != nil {
		t.Fatalf("while the API server was down: %v", err)
	}
	if ctrl.Exited() {
		t.Fatal("controller exited during the outage")
	}

	// A change after the outage takes effect and gets status. The informers
	// reconnect with client-go's reflector backoff (0.8 s doubling to 30 s,
	// with jitter), so after an 8 s outage the first relist can be ~25 s away.
	f.route(ctx, t, "web", "web.example", "echo-b")
	waitServedByWithin(ctx, t, 90*time.Second, addr, "web.example", "/", f.ns, podsB)
	e.waitRoute(ctx, t, f.ns, "web", f.controllerName, accepted, resolvedRefs)
}

// steadyLoad sends a request every 20ms until ctx ends (at most 5,000) and
// returns the first one not answered 200 by one of pods.
func steadyLoad(ctx context.Context, addr, host, ns string, pods []string) error {
	client := harness.NewClient(2 * time.Second)
	allowed := make(map[string]bool)
	for _, p := range pods {
		allowed[p] = true
	}
	sent := 0
	for ; sent < 5000 && ctx.Err() == nil; sent++ {
		r, err := harness.Get(ctx, client, addr, host, "/")
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("request %d: %w", sent, err)
		}
		if r.Status != 200 || !allowed[r.Echo.Pod] || r.Echo.Namespace != ns {
			return fmt.Errorf("request %d: %d from pod %q: %q", sent, r.Status, r.Echo.Pod, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sent < 100 {
		return fmt.Errorf("only %d requests sent", sent)
	}
	return nil
}
