package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/false-systems/rauta/internal/admin"
	"github.com/false-systems/rauta/internal/provider/kube"
)

// Run is "rauta mesh": it attaches the programs, keeps the maps equal to
// the cluster's Services and EndpointSlices until ctx ends, and then
// detaches (or, with KeepAttached, leaves everything for the next agent).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Kubeconfig == "" {
		cfg.Kubeconfig = os.Getenv("KUBECONFIG")
	}
	if cfg.NodeName == "" {
		cfg.NodeName = os.Getenv("NODE_NAME")
	}
	client, err := kubeClient(cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	return Serve(ctx, cfg, client, logger)
}

// Serve is Run with a given Kubernetes client.
func Serve(ctx context.Context, cfg Config, client kubernetes.Interface, logger *slog.Logger) (err error) {
	cgroup, err := ResolveCgroup(cfg.Cgroup)
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	d, err := Open(Options{Cgroup: cgroup, PinDir: cfg.PinDir})
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	defer func() {
		if cerr := d.Close(cfg.KeepAttached); cerr != nil {
			err = errors.Join(err, fmt.Errorf("mesh: detach: %w", cerr))
		}
	}()
	w, err := d.Writer()
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	if cfg.KeepAttached && cfg.PinDir == "" {
		logger.Warn("mesh: -keep-attached without -pin-dir: nothing can be kept, the programs are detached on exit")
	}
	logger.Info("mesh programs attached", "cgroup", cgroup, "pin_dir", cfg.PinDir,
		"frontends_found", w.Frontends(), "slots_found", w.Slots())

	s := &syncer{writer: w, node: cfg.NodeName, onSync: cfg.OnSync, logger: logger}
	m := newMetrics(d.Stats)
	s.metrics = m

	coalescer := kube.NewCoalescer(cfg.HoldOff, cfg.MaxDelay)
	watch, err := newWatcher(client, coalescer.Poke)
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}

	var servers []*admin.Server
	src := admin.Source{Ready: s.ready, Config: s.dump, Status: s.status}
	adm, err := admin.New(cfg.AdminAddr, m.reg, src, logger)
	if err != nil {
		return fmt.Errorf("mesh: admin listener %s: %w", cfg.AdminAddr, err)
	}
	servers = append(servers, adm)
	if cfg.MetricsAddr != "" {
		probes, err := admin.NewProbes(cfg.MetricsAddr, m.reg, s.ready, logger)
		if err != nil {
			_ = adm.Close()
			return fmt.Errorf("mesh: metrics listener %s: %w", cfg.MetricsAddr, err)
		}
		servers = append(servers, probes)
	}

	// The servers and the sync loop run until ctx ends or one of them
	// fails, which ends the others.
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, len(servers)+1)
	for _, srv := range servers {
		go func() { errc <- srv.Run(gctx) }()
	}
	go func() {
		if watch.start(gctx) {
			s.sync(watch)
			coalescer.Run(gctx, func() { s.sync(watch) })
		}
		errc <- nil
	}()
	var errs []error
	for range len(servers) + 1 {
		if err := <-errc; err != nil {
			errs = append(errs, err)
			stop()
		}
	}
	stop()
	watch.factory.Shutdown() // the informers' goroutines end with gctx
	return errors.Join(errs...)
}

// syncer writes the caches' content into the maps.
type syncer struct {
	writer  *Writer
	node    string
	onSync  func(State, error)
	logger  *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	state   State
	synced  bool
	lastErr error
	lastAt  time.Time
}

func (s *syncer) sync(w *watcher) {
	in, err := w.input(s.node)
	var st State
	if err == nil {
		st = FromKube(in)
		err = s.writer.Apply(st)
	}
	result := "ok"
	if err != nil {
		result = "error"
		s.logger.Error("mesh: map update", "err", err)
	}
	s.metrics.syncs.WithLabelValues(result).Inc()
	s.metrics.frontends.Set(float64(s.writer.Frontends()))
	s.metrics.slots.Set(float64(s.writer.Slots()))
	s.mu.Lock()
	s.state, s.synced, s.lastErr, s.lastAt = st, true, err, time.Now()
	s.mu.Unlock()
	s.logger.Debug("mesh: maps updated", "frontends", len(st), "endpoints", st.Endpoints())
	if s.onSync != nil {
		s.onSync(st, err)
	}
}

// ready: the maps were written from complete caches at least once. A
// later failed update (a full map) leaves the agent ready: the other
// frontends are served; /status and the metrics show the error.
func (s *syncer) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced {
		return errors.New("the maps are not yet written from the Services and EndpointSlices")
	}
	return nil
}

// dumpEntry is one frontend in /config_dump.
type dumpEntry struct {
	Frontend string   `json:"frontend"`
	Service  string   `json:"service"`
	Steer    bool     `json:"steer,omitempty"`
	Backends []string `json:"backends"`
}

func (s *syncer) dump() any {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	out := make([]dumpEntry, 0, len(st))
	for _, f := range st.Frontends() {
		e := st[f]
		d := dumpEntry{Frontend: f.String(), Service: e.Service, Steer: e.Steer, Backends: []string{}}
		for _, b := range e.Backends {
			d.Backends = append(d.Backends, b.String())
		}
		out = append(out, d)
	}
	return out
}

func (s *syncer) status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := map[string]any{"synced": s.synced, "frontends": len(s.state), "endpoints": s.state.Endpoints()}
	if !s.lastAt.IsZero() {
		st["last_sync"] = s.lastAt.UTC().Format(time.RFC3339Nano)
	}
	if s.lastErr != nil {
		st["last_error"] = s.lastErr.Error()
	}
	return st
}
