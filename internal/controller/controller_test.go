package controller

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/false-systems/rauta/internal/gateway"

	"github.com/false-systems/rauta/internal/freeport"
)

// syncBuffer is a log sink the test can read while the controller writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// An API server that is down when the controller starts must not stop it:
// it stays alive and healthy, says it is not ready, logs why, and keeps
// retrying until it is told to stop.
func TestControllerSurvivesAnAPIServerThatIsDownAtStart(t *testing.T) {
	apiAddr := freeAddr(t) // nothing listens here
	adminAddr := freeAddr(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Options:        gateway.Options{Address: "127.0.0.1", AdminAddr: adminAddr},
			REST:           &rest.Config{Host: "https://" + apiAddr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}},
			LeaseNamespace: "default",
			LeaseName:      "rauta-test",
			Identity:       "test",
			HoldOff:        10 * time.Millisecond,
			MaxDelay:       100 * time.Millisecond,
			Provisioner:    ProvisionerInProcess,
		}, slog.New(slog.NewJSONHandler(&logs, nil)))
	}()
	t.Cleanup(cancel)

	client := &http.Client{Timeout: 2 * time.Second}
	status := func(path string) int {
		resp, err := client.Get("http://" + adminAddr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(logs.String(), "API server session ended; retrying") {
		select {
		case err := <-done:
			t.Fatalf("controller exited while the API server was down: %v\nlogs:\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(logs.String(), "API server session ended; retrying") {
		t.Fatalf("no retry logged within 20s; logs:\n%s", logs.String())
	}
	if got := status("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz = %d while the API server is down, want 200 (the process is alive)", got)
	}
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d before any configuration, want 503", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
