package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/false-systems/rauta/internal/poll"
	"github.com/false-systems/rauta/test/integration/harness"
)

// TestTwoReplicas: two controller replicas (each with its own address pool:
// two processes on one host cannot bind the same address and port) both
// serve the Gateway; only the Lease holder writes status. When the holder
// dies without releasing the Lease, the other takes over within the Lease
// duration and writes status for later changes.
func TestTwoReplicas(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, e, "replicas")
	const lease = "it-replicas"

	a := e.startController(ctx, t, replica{controllerName: f.controllerName, lease: lease, identity: "replica-a", pool: "127.0.3.0/24"})
	// A holds the Lease before B starts, so which one leads is known.
	e.waitLeaseHolder(ctx, t, lease, "replica-a", 30*time.Second)
	b := e.startController(ctx, t, replica{controllerName: f.controllerName, lease: lease, identity: "replica-b", pool: "127.0.4.0/24"})

	podsA := f.echo(ctx, t, "echo-a", 2)
	podsB := f.echo(ctx, t, "echo-b", 1)
	f.apply(ctx, t, httpGatewayYAML)
	f.route(ctx, t, "web", "web.example", "echo-a")

	// Status (and so status.addresses) comes from A alone.
	addrA := e.waitGateway(ctx, t, f.ns, "gw", accepted, programmed)
	if !strings.HasPrefix(addrA, "127.0.3.") {
		t.Fatalf("Gateway status address %s, want one of A's pool 127.0.3.0/24", addrA)
	}
	e.waitRoute(ctx, t, f.ns, "web", f.controllerName, accepted, resolvedRefs)
	// B serves the same Gateway on an address of its own pool.
	addrB := servedAddress(ctx, t, b, f.ns+"/gw")
	if !strings.HasPrefix(addrB, "127.0.4.") {
		t.Fatalf("B serves the Gateway on %s, want an address of its pool 127.0.4.0/24", addrB)
	}
	if a, err := a.ServedAddress(ctx, f.ns+"/gw"); err != nil || a != addrA {
		t.Errorf("A serves the Gateway on %q (err %v), want its status address %s", a, err, addrA)
	}
	waitServedBy(ctx, t, hostPort(addrA, 80), "web.example", "/", f.ns, podsA)
	waitServedBy(ctx, t, hostPort(addrB, 80), "web.example", "/", f.ns, podsA)

	if w := metric(ctx, t, a, "rauta_status_writes_total"); w == 0 {
		t.Errorf("leader A wrote no status")
	}
	if w := metric(ctx, t, b, "rauta_status_writes_total"); w != 0 {
		t.Errorf("non-leader B wrote status for %v objects", w)
	}
	if gw, err := e.gateway(ctx, f.ns, "gw"); err != nil || len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != addrA {
		t.Errorf("Gateway status addresses %+v (err %v), want only A's %s", gw.Status.Addresses, err, addrA)
	}
	e.checkLeaseHolder(ctx, t, lease, "replica-a")

	t.Run("the leader dies: the other replica takes over status", func(t *testing.T) {
		killed := time.Now()
		a.Kill() // SIGKILL: the Lease is not released, B waits for it to expire
		// LeaseDuration 15s, plus B's retry period (2s) and the API round trips.
		e.waitLeaseHolder(ctx, t, lease, "replica-b", 25*time.Second)
		t.Logf("replica-b holds the Lease %s after replica-a was killed", time.Since(killed).Round(100*time.Millisecond))

		before := metric(ctx, t, b, "rauta_status_writes_total")
		f.route(ctx, t, "web", "web.example", "echo-b")
		waitServedBy(ctx, t, hostPort(addrB, 80), "web.example", "/", f.ns, podsB)
		e.waitRoute(ctx, t, f.ns, "web", f.controllerName, accepted, resolvedRefs)
		// B now reports the address it serves.
		if got := e.waitGateway(ctx, t, f.ns, "gw", accepted, programmed); got != addrB {
			poll.NoError(t, 10*time.Second, "Gateway status address moves to B's", func() error {
				gw, err := e.gateway(ctx, f.ns, "gw")
				if err != nil {
					return err
				}
				if len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != addrB {
					return fmt.Errorf("status.addresses %+v, want %s", gw.Status.Addresses, addrB)
				}
				return nil
			})
		}
		if after := metric(ctx, t, b, "rauta_status_writes_total"); after <= before {
			t.Errorf("B's status writes %v -> %v after taking over, want an increase", before, after)
		}
	})
}

func servedAddress(ctx context.Context, t *testing.T, c *harness.Controller, gateway string) string {
	t.Helper()
	var addr string
	poll.NoError(t, 30*time.Second, c.Identity+" serving "+gateway, func() error {
		var err error
		addr, err = c.ServedAddress(ctx, gateway)
		return err
	})
	return addr
}

func metric(ctx context.Context, t *testing.T, c *harness.Controller, name string) float64 {
	t.Helper()
	v, err := c.Metric(ctx, name)
	if err != nil {
		t.Fatalf("%s of %s: %v", name, c.Identity, err)
	}
	return v
}

func (e *environment) leaseHolder(ctx context.Context, name string) (string, error) {
	l, err := e.cs.CoordinationV1().Leases("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

func (e *environment) waitLeaseHolder(ctx context.Context, t *testing.T, name, identity string, within time.Duration) {
	t.Helper()
	poll.NoError(t, within, "Lease "+name+" held by "+identity, func() error {
		h, err := e.leaseHolder(ctx, name)
		if err != nil {
			return err
		}
		if h != identity {
			return fmt.Errorf("held by %q", h)
		}
		return nil
	})
}

func (e *environment) checkLeaseHolder(ctx context.Context, t *testing.T, name, identity string) {
	t.Helper()
	h, err := e.leaseHolder(ctx, name)
	if err != nil || h != identity {
		t.Errorf("Lease %s held by %q (err %v), want %q", name, h, err, identity)
	}
}
