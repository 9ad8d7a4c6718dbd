// Package controller runs RAUTA inside a Kubernetes cluster: it watches the
// API server, translates, serves every Gateway of its GatewayClasses
// in-process, and (on the leader only) writes status.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/provider/kube"
	"github.com/false-systems/rauta/internal/provision"
	"github.com/false-systems/rauta/internal/translate"
	"github.com/false-systems/rauta/internal/wellknown"
)

// Config configures the controller.
type Config struct {
	gateway.Options
	REST           *rest.Config
	ControllerName string
	// AddressPool is a CIDR; each Gateway without spec.addresses gets its own
	// address from it. Empty: every Gateway binds Options.Address.
	AddressPool string
	// LeaseNamespace and LeaseName name the Lease of the status writer election.
	LeaseNamespace string
	LeaseName      string
	Identity       string
	// SupportedFeatures is written into GatewayClass status.
	SupportedFeatures []gwv1.SupportedFeature
	// HoldOff and MaxDelay coalesce API events before a translation.
	HoldOff, MaxDelay time.Duration

	// Provisioner is ProvisionerKubernetes (the default: a data-plane
	// Deployment and Service per Gateway, fed over the config stream) or
	// ProvisionerInProcess (this process serves every Gateway itself).
	Provisioner string
	// Namespace is the controller's own namespace (the CA Secret, the
	// Service data planes dial).
	Namespace string
	// ControllerService names the Service in Namespace that data planes
	// dial; its port named "config" reaches ConfigListen.
	ControllerService string
	// ConfigListen is the config stream's listen address.
	ConfigListen string
	// DataPlaneImage is the image of data-plane pods unless
	// GatewayParameters name another.
	DataPlaneImage string
	// GatewayClass, when set, is the only GatewayClass served (of those
	// with ControllerName).
	GatewayClass string
	// SecretNamespaces, when set, are the only namespaces whose Secrets are
	// read (the chart's rbac.secretNamespaces grants no more).
	SecretNamespaces []string
}

// Controller is a running controller.
type Controller struct {
	cfg    Config
	logger *slog.Logger
	gw     *gateway.Gateway
	pool   *addressPool
	leader atomic.Bool
	// translations carries translated routes from one sync to the next;
	// syncs run one at a time (the coalescer's goroutine).
	translations translate.Cache

	statusWrites prometheus.Counter
	syncSeconds  prometheus.Histogram

	// kubernetes provisioner only
	prov            *provisioner
	provisionWrites prometheus.Counter
	paramsInstalled atomic.Bool
	runCtx          context.Context
}

// Run serves until ctx ends. The proxy and the admin endpoints start at once
// and keep serving the last good configuration whatever happens to the API
// server; the connection to it is retried with backoff.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.ControllerName == "" {
		cfg.ControllerName = wellknown.DefaultControllerName
	}
	switch cfg.Provisioner {
	case "", ProvisionerKubernetes:
		if cfg.Namespace == "" || cfg.ControllerService == "" || cfg.ConfigListen == "" || cfg.DataPlaneImage == "" {
			return fmt.Errorf("the kubernetes provisioner needs -namespace, -controller-service, -config-listen and -dataplane-image")
		}
	case ProvisionerInProcess:
	default:
		return fmt.Errorf("provisioner %q: want %s or %s", cfg.Provisioner, ProvisionerKubernetes, ProvisionerInProcess)
	}
	// client-go and controller-runtime log through their own globals; send
	// both to our logger so nothing is dropped or printed in another format.
	klog.SetSlogLogger(logger)
	ctrllog.SetLogger(logr.FromSlogHandler(logger.Handler()))
	// client-go's default of 5 requests/s would make every status write of a
	// large configuration wait in the client (controller-runtime raises it too).
	cfg.REST = rest.CopyConfig(cfg.REST)
	if cfg.REST.QPS == 0 {
		cfg.REST.QPS, cfg.REST.Burst = 50, 100
	}
	if cfg.Provisioner != ProvisionerInProcess {
		// This process carries no traffic (its data planes do, and they
		// keep serving while it restarts): nothing to drain.
		cfg.DrainPeriod = 0
	}
	gw, err := gateway.New(cfg.Options, logger)
	if err != nil {
		return err
	}
	c := &Controller{cfg: cfg, logger: logger, gw: gw}
	c.statusWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rauta_status_writes_total",
		Help: "Objects whose status this replica wrote as leader.",
	})
	c.syncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "rauta_controller_sync_duration_seconds",
		Help:    "Time from reading the cache to handing a translation to the data planes (list, translate, encode, publish).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	gw.Registry.MustRegister(c.statusWrites, c.syncSeconds)
	if cfg.AddressPool != "" {
		if c.pool, err = newAddressPool(cfg.AddressPool); err != nil {
			return err
		}
	}
	if cfg.Provisioner != ProvisionerInProcess {
		// A clientset contacts nothing until used, so an API server that is
		// away at start-up does not stop the process.
		cs, err := kubernetes.NewForConfig(cfg.REST)
		if err != nil {
			return fmt.Errorf("API client: %w", err)
		}
		c.prov = newProvisioner(cs.AuthenticationV1().TokenReviews())
		c.provisionWrites = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_provision_writes_total",
			Help: "Data-plane objects (Deployments, Services, ServiceAccounts) this replica created, updated or deleted.",
		})
		gw.Registry.MustRegister(c.provisionWrites)
	}
	c.runCtx = ctx
	return gw.Run(ctx, func(ctx context.Context) error { c.connectLoop(ctx); return nil })
}

// connectLoop keeps a watch session to the API server alive.
func (c *Controller) connectLoop(ctx context.Context) {
	backoff := time.Second
	for {
		err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		c.logger.Error("API server session ended; retrying, the last good configuration keeps serving",
			"err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// session watches the API server until ctx ends or the caches cannot be
// started (API server unreachable, CRDs missing).
func (c *Controller) session(ctx context.Context) error {
	scheme, err := kube.NewScheme()
	if err != nil {
		return err
	}
	copts := cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{}}
	// ConfigMaps are read for CA bundles only: the cache keeps their
	// ca.crt and nothing else.
	cms := cache.ByObject{Transform: kube.KeepCABundle}
	if len(c.cfg.SecretNamespaces) > 0 {
		nss := map[string]cache.Config{}
		for _, ns := range c.cfg.SecretNamespaces {
			nss[ns] = cache.Config{}
		}
		copts.ByObject[&corev1.Secret{}] = cache.ByObject{Namespaces: nss}
		cms.Namespaces = nss
	}
	copts.ByObject[&corev1.ConfigMap{}] = cms
	if c.prov != nil {
		if err := errors.Join(appsv1.AddToScheme(scheme), authnv1.AddToScheme(scheme)); err != nil {
			return err
		}
		// Only the provisioner's own objects are cached, not every
		// Deployment and ServiceAccount of the cluster.
		managed := labels.SelectorFromSet(labels.Set{provision.LabelManagedBy: provision.ManagedBy})
		copts.ByObject[&appsv1.Deployment{}] = cache.ByObject{Label: managed}
		copts.ByObject[&corev1.ServiceAccount{}] = cache.ByObject{Label: managed}
	}
	ch, err := cache.New(c.cfg.REST, copts)
	if err != nil {
		return fmt.Errorf("create cache: %w", err)
	}
	cl, err := client.New(c.cfg.REST, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	co := kube.NewCoalescer(c.cfg.HoldOff, c.cfg.MaxDelay)
	if err := kube.Watch(ctx, ch, co.Poke); err != nil {
		return fmt.Errorf("%w (are the Gateway API CRDs installed?)", err)
	}
	if c.prov != nil {
		if err := c.watchProvisioned(ctx, ch, cl, co.Poke); err != nil {
			return err
		}
	}
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- ch.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	synced := ch.WaitForCacheSync(syncCtx)
	syncCancel()
	if !synced {
		return fmt.Errorf("caches did not sync within a minute (is the API server reachable?)")
	}
	c.logger.Info("watching the API server")

	writer := &kube.StatusWriter{
		Client:            cl,
		ControllerName:    c.cfg.ControllerName,
		SupportedFeatures: c.cfg.SupportedFeatures,
		Now:               time.Now,
	}
	statuses := newMailbox()
	jobs := newLatest[provisionJob]()
	go c.elect(ctx, co.Poke)
	go c.writeStatus(ctx, writer, statuses)
	if c.prov != nil {
		c.startRestatus(ctx, statuses)
		go c.provisionLoop(ctx, &provision.Applier{Reader: ch, Writer: cl}, jobs)
		go c.startStream(ctx, cl, ch, co.Poke)
	}
	co.Poke()
	go co.Run(ctx, func() { c.sync(ctx, ch, statuses, jobs) })
	select {
	case <-ctx.Done():
		return nil
	case err := <-cacheErr:
		return fmt.Errorf("cache stopped: %w", err)
	}
}

// sync translates the current cache contents, serves the result and hands
// the status to the status writer.
func (c *Controller) sync(ctx context.Context, r client.Reader, statuses *mailbox, jobs *latest[provisionJob]) {
	start := time.Now()
	defer func() { c.syncSeconds.Observe(time.Since(start).Seconds()) }()
	res, err := kube.List(ctx, r)
	if err != nil {
		c.gw.Rejected()
		c.logger.Error("list from cache", "err", err)
		return
	}
	c.logger.Debug("sync: listed", "took", time.Since(start).String(), "httproutes", len(res.HTTPRoutes))
	if c.cfg.GatewayClass != "" {
		// Classes of our controllerName other than the one served are
		// left to another RAUTA installation.
		res.GatewayClasses = slices.DeleteFunc(slices.Clone(res.GatewayClasses), func(gc *gwv1.GatewayClass) bool {
			return gc.Name != c.cfg.GatewayClass
		})
	}
	if c.prov != nil {
		c.syncProvisioned(ctx, r, res, statuses, jobs)
		return
	}
	opts := translate.Options{ControllerName: c.cfg.ControllerName, DefaultAddress: c.cfg.Address, Cache: &c.translations}
	if c.pool != nil {
		owned := make(map[string]bool)
		for _, gc := range res.GatewayClasses {
			owned[gc.Name] = string(gc.Spec.ControllerName) == c.cfg.ControllerName
		}
		var keys []string
		for _, gw := range res.Gateways {
			if owned[string(gw.Spec.GatewayClassName)] && len(gw.Spec.Addresses) == 0 {
				keys = append(keys, gw.Namespace+"/"+gw.Name)
			}
		}
		addrs, err := c.pool.assign(keys)
		if err != nil {
			c.logger.Error("gateway addresses", "err", err)
		}
		opts.Addresses = addrs
	}
	result := translate.Translate(res, opts)
	if err := c.gw.Apply(result.IR, result.Status); err != nil {
		c.logger.Error("apply", "err", err)
	}
	statuses.put(statusJob{res: res, status: result.Status})
}

// writeStatus writes the newest translated status while this replica holds
// the Lease. It runs apart from sync, so that status writes, which cost API
// requests, never delay serving a new configuration; a status superseded
// before it was written is skipped.
func (c *Controller) writeStatus(ctx context.Context, writer *kube.StatusWriter, statuses *mailbox) {
	for {
		job, ok := statuses.take(ctx)
		if !ok {
			return
		}
		if !c.leader.Load() {
			continue // the sync after winning the Lease brings a new job
		}
		n, err := writer.Write(ctx, job.res, job.status)
		c.statusWrites.Add(float64(n))
		if err != nil {
			c.logger.Error("write status", "err", err)
		}
	}
}
