package ebpf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/false-systems/rauta/internal/observe"
	"github.com/false-systems/rauta/internal/observe/capture"

	"github.com/false-systems/rauta/internal/freeport"
)

// syncBuffer collects the observer's JSON lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// record is the union of the exchange and event JSON lines.
type record struct {
	Type    string `json:"type"`
	Kind    string `json:"kind"`
	Service string `json:"service"`
	Method  string `json:"method"`
	Target  string `json:"target"`
	// TargetTruncated: the exchange's target_truncated flag.
	TargetTruncated bool    `json:"target_truncated"`
	Route           string  `json:"route"`
	UserAgent       string  `json:"user_agent"`
	Status          int     `json:"status"`
	Outcome         string  `json:"outcome"`
	LatencyNS       int64   `json:"latency_ns"`
	LatencyMS       float64 `json:"latency_ms"`
	Reason          string  `json:"reason"`
	ErrorRate       float64 `json:"error_rate"`
}

func (b *syncBuffer) records(t *testing.T) []record { return jsonLines[record](t, b) }

// jsonLines decodes every JSON line the observer wrote so far as T.
func jsonLines[T any](t *testing.T, b *syncBuffer) []T {
	t.Helper()
	b.mu.Lock()
	data := append([]byte(nil), b.buf.Bytes()...)
	b.mu.Unlock()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("observer wrote a bad JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

type runningObserver struct {
	out         *syncBuffer
	metricsAddr string
	cancel      context.CancelFunc
	done        chan error
	stopped     bool
}

func freePort(t *testing.T) string {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// startObserver runs observe.Run on the router's interfaces; cfg may adjust
// the configuration. It is stopped in t.Cleanup if the test did not.
func startObserver(t *testing.T, tp *topology, mode string, adjust func(*observe.Config)) *runningObserver {
	t.Helper()
	return startObserverOn(t, tp, mode, []string{tp.rClient, tp.rServer}, adjust)
}

// startObserverOn is startObserver on the named router interfaces.
func startObserverOn(t *testing.T, tp *topology, mode string, ifaces []string, adjust func(*observe.Config)) *runningObserver {
	t.Helper()
	cfg := observe.Defaults()
	cfg.Interfaces = ifaces
	cfg.Netns = tp.netnsPath(tp.router)
	cfg.Mode = mode
	cfg.Kube = "off"
	cfg.JSONExchanges = true
	cfg.RingBytes = 4 << 20
	cfg.MetricsAddr = freePort(t)
	if adjust != nil {
		adjust(&cfg)
	}
	o := &runningObserver{out: &syncBuffer{}, metricsAddr: cfg.MetricsAddr, done: make(chan error, 1)}
	cfg.Output = o.out
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() { o.done <- observe.Run(ctx, cfg, logger) }()
	t.Cleanup(func() { o.stop(t) })

	// Ready when the metrics endpoint answers (it starts after attaching).
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-o.done:
			o.stopped = true
			if errors.Is(err, ebpf.ErrNotSupported) {
				t.Skipf("SKIP: kernel feature missing for mode %s: %v", mode, err)
			}
			if errors.Is(err, capture.ErrPermission) {
				t.Skipf("SKIP: missing capability: %v", err)
			}
			t.Fatalf("observer exited early: %v", err)
		default:
		}
		if res, err := http.Get("http://" + o.metricsAddr + "/metrics"); err == nil {
			res.Body.Close()
			return o
		}
		if time.Now().After(deadline) {
			t.Fatal("observer did not come up within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (o *runningObserver) stop(t *testing.T) {
	t.Helper()
	if o.stopped {
		return
	}
	o.stopped = true
	o.cancel()
	select {
	case err := <-o.done:
		if err != nil {
			t.Errorf("observer returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("observer did not stop within 15s")
	}
}

// waitRecords polls until pred holds over the records (or 10s pass).
func (o *runningObserver) waitRecords(t *testing.T, pred func([]record) bool) []record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := o.out.records(t)
		if pred(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			return recs
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// metric returns the value of a Prometheus sample line (sum over series
// when labels is empty and several match).
func (o *runningObserver) metric(t *testing.T, name, labels string) float64 {
	t.Helper()
	res, err := http.Get("http://" + o.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if labels != "" && !strings.Contains(rest, labels) {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func exchanges(recs []record) []record {
	var out []record
	for _, r := range recs {
		if r.Type == "exchange" {
			out = append(out, r)
		}
	}
	return out
}

func events(recs []record, kind string) []record {
	var out []record
	for _, r := range recs {
		if r.Type == "event" && r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
