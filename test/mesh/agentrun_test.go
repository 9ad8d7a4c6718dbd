package mesh

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/false-systems/rauta/internal/mesh"
)

// agent is mesh.Serve running inside the test, with its map updates.
type agent struct {
	t     testing.TB
	syncs chan mesh.State
	done  chan struct{} // closed when Serve returned, with err
	err   error
	stop  context.CancelFunc
}

// startAgent runs mesh.Serve with cfg (its OnSync is set here) until the
// test ends.
func startAgent(t testing.TB, cfg mesh.Config, clients mesh.Clients) *agent {
	t.Helper()
	a := &agent{t: t, syncs: make(chan mesh.State, 16), done: make(chan struct{})}
	cfg.OnSync = func(st mesh.State, err error) {
		if err != nil {
			t.Errorf("update: %v", err)
		}
		// Never block the agent: a full channel loses its oldest state
		// (waits look for a condition of the latest).
		for {
			select {
			case a.syncs <- st:
				return
			default:
			}
			select {
			case <-a.syncs:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	go func() {
		defer close(a.done)
		a.err = mesh.Serve(ctx, cfg, clients, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		<-a.done
	})
	return a
}

// waitState waits for a map update whose State satisfies ok.
func (a *agent) waitState(what string, ok func(mesh.State) bool) {
	a.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case st := <-a.syncs:
			if ok(st) {
				return
			}
		case <-a.done:
			a.t.Fatalf("agent stopped while waiting for %s: %v", what, a.err)
		case <-timeout:
			a.t.Fatalf("no map update with %s within 30s", what)
		}
	}
}

// shutdown ends the agent and fails the test if it does not return
// cleanly.
func (a *agent) shutdown() {
	a.t.Helper()
	a.stop()
	select {
	case <-a.done:
		if a.err != nil {
			a.t.Fatalf("agent: %v", a.err)
		}
	case <-time.After(30 * time.Second):
		a.t.Fatal("agent did not stop within 30s of its context ending")
	}
}

// watchCounter counts the watches fake API servers start. They have no
// resource versions: a change made before an informer watches would be
// lost, so tests wait for every watch before changing anything.
type watchCounter struct{ n atomic.Int32 }

func (w *watchCounter) reactor(k8stesting.Action) (bool, watch.Interface, error) {
	w.n.Add(1)
	return false, nil, nil
}

// wait waits until n watches started.
func (w *watchCounter) wait(t testing.TB, n int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for w.n.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the informers never watched (%d of %d)", w.n.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
