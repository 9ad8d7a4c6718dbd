// Package svcproxy is the local cluster's service proxy and load balancer, in the spirit of
// kube-proxy's old userspace mode and of cloud-provider-kind and MetalLB: it watches
// Services and EndpointSlices and, in the host's network namespace, listens on every
// ClusterIP:port (pods reach the Service range through the bridge), gives LoadBalancer
// Services an address from a pool, writes it to their status and listens on it, and
// forwards each accepted TCP connection to a ready endpoint.
package svcproxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// resyncPeriod re-delivers every Service as a safety net; changes, including a status
// someone else wrote, arrive as watch events, and a freed address requeues the Services
// waiting for one.
const resyncPeriod = 10 * time.Minute

// serviceIndex indexes EndpointSlices by the "namespace/name" of their Service.
const serviceIndex = "service"

// Proxy is a running service proxy. Create it with New, then Start and Stop it once.
type Proxy struct {
	cfg Config
	cs  kubernetes.Interface

	ranges      []*localRange
	conns       *connTracker
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	services    corelisters.ServiceLister
	slices      cache.Indexer
	queue       workqueue.TypedRateLimitingInterface[string]
	cancel      context.CancelFunc
	done        chan struct{}
	dns         *dnsServer // nil without Config.DNS

	// Owned by the sync loop (one goroutine at a time).
	pool     *pool
	owned    map[string]map[frontend]struct{} // Service key -> its listening addresses
	warnings map[string]string                // Service key + reason -> last message sent

	mu        sync.Mutex // guards listeners, which Listening reads from other goroutines
	listeners map[frontend]*front
	stopped   bool
}

// New checks cfg and builds the API client; it changes nothing on the host.
func New(cfg Config) (*Proxy, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.ServiceCIDR = cfg.ServiceCIDR.Masked()
	cfg.LoadBalancerCIDR = cfg.LoadBalancerCIDR.Masked()
	cs, err := kubernetes.NewForConfig(cfg.Client)
	if err != nil {
		return nil, fmt.Errorf("svcproxy client: %w", err)
	}
	p := &Proxy{
		cfg:       cfg,
		cs:        cs,
		conns:     newConnTracker(),
		owned:     map[string]map[frontend]struct{}{},
		warnings:  map[string]string{},
		listeners: map[frontend]*front{},
	}
	if cfg.LoadBalancerCIDR.IsValid() {
		p.pool = newPool(cfg.LoadBalancerCIDR)
	}
	return p, nil
}

// Start claims the address ranges, syncs the watches and opens the listeners of every
// existing Service before it returns; from then on a background loop follows changes until
// Stop. On error, everything Start did is undone.
func (p *Proxy) Start(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("svcproxy needs root (routes in the local table, binding Service addresses)")
	}
	if err := p.start(ctx); err != nil {
		return errors.Join(err, p.Stop())
	}
	return nil
}

func (p *Proxy) start(ctx context.Context) error {
	for _, prefix := range []netip.Prefix{p.cfg.ServiceCIDR, p.cfg.LoadBalancerCIDR} {
		if !prefix.IsValid() {
			continue
		}
		r, err := claimLocalRange(prefix)
		if err != nil {
			return err
		}
		p.ranges = append(p.ranges, r)
	}

	p.broadcaster = record.NewBroadcaster(record.WithContext(context.Background()))
	p.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: p.cs.CoreV1().Events("")})
	p.recorder = p.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "rauta-devcluster-svcproxy"})

	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	factory := informers.NewSharedInformerFactory(p.cs, resyncPeriod)
	svcInformer := factory.Core().V1().Services()
	sliceInformer := factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInformer.AddIndexers(cache.Indexers{serviceIndex: sliceServiceKey}); err != nil {
		return fmt.Errorf("index endpointslices: %w", err)
	}
	p.services = svcInformer.Lister()
	p.slices = sliceInformer.GetIndexer()
	p.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())

	enqueueService := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			p.queue.Add(key)
		}
	}
	enqueueSlice := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if keys, _ := sliceServiceKey(obj); len(keys) == 1 {
			p.queue.Add(keys[0])
		}
	}
	if _, err := svcInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueService, UpdateFunc: func(_, o any) { enqueueService(o) }, DeleteFunc: enqueueService,
	}); err != nil {
		return fmt.Errorf("watch services: %w", err)
	}
	if _, err := sliceInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueSlice, UpdateFunc: func(_, o any) { enqueueSlice(o) }, DeleteFunc: enqueueSlice,
	}); err != nil {
		return fmt.Errorf("watch endpointslices: %w", err)
	}
	factory.Start(runCtx.Done())
	fail := func(err error) error {
		cancel()
		factory.Shutdown()
		return err
	}
	// The caller's ctx bounds only the wait; the watches live until Stop.
	stopWait := context.AfterFunc(ctx, cancel)
	for typ, ok := range factory.WaitForCacheSync(runCtx.Done()) {
		if !ok {
			return fail(fmt.Errorf("sync %v watch: %w", typ, context.Cause(ctx)))
		}
	}
	if !stopWait() {
		return fail(fmt.Errorf("sync service watches: %w", ctx.Err()))
	}

	// First pass in creation order, so the oldest Services get the lowest addresses
	// whatever order the watch delivered them in.
	all, err := p.services.List(labels.Everything())
	if err != nil {
		return fail(err)
	}
	slices.SortStableFunc(all, func(a, b *corev1.Service) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	for _, svc := range all {
		key, _ := cache.MetaNamespaceKeyFunc(svc)
		if err := p.sync(ctx, key); err != nil {
			p.cfg.Log.Warn("sync service", "service", key, "err", err)
		}
	}
	if p.cfg.DNS.IsValid() {
		if err := p.startDNS(); err != nil {
			return fail(err)
		}
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		defer factory.Shutdown()
		p.runQueue(runCtx)
	}()
	return nil
}

func (p *Proxy) runQueue(ctx context.Context) {
	for {
		key, shutdown := p.queue.Get()
		if shutdown {
			return
		}
		if err := p.sync(ctx, key); err != nil && ctx.Err() == nil {
			p.cfg.Log.Warn("sync service", "service", key, "err", err)
			p.queue.AddRateLimited(key)
		} else {
			p.queue.Forget(key)
		}
		p.queue.Done(key)
	}
}

// Stop ends the sync loop, closes every listener and every forwarded connection, and
// removes the routes and locks Start made. It is safe to call more than once.
func (p *Proxy) Stop() error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.mu.Unlock()

	if p.cancel != nil {
		p.cancel()
	}
	if p.queue != nil {
		p.queue.ShutDown()
	}
	if p.done != nil {
		<-p.done
	}
	var errs []error
	if p.dns != nil {
		errs = append(errs, p.dns.close())
	}
	p.mu.Lock()
	for addr, l := range p.listeners {
		if err := l.fwd.close(); err != nil {
			errs = append(errs, fmt.Errorf("close listener %s: %w", addr, err))
		}
		delete(p.listeners, addr)
	}
	p.mu.Unlock()
	p.conns.close()
	if p.broadcaster != nil {
		p.broadcaster.Shutdown()
	}
	for _, r := range p.ranges {
		if err := r.release(); err != nil {
			errs = append(errs, err)
		}
	}
	p.ranges = nil
	return errors.Join(errs...)
}

// Listening lists the addresses the proxy listens on (TCP or UDP), sorted.
func (p *Proxy) Listening() []netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(p.listeners))
	for f := range p.listeners {
		out = append(out, f.addr)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out)
}

// front is a listening frontend and the Service that owns it.
type front struct {
	owner string // Service key; read and written only by the sync loop
	fwd   forwarder
}

// forwarder is a TCP listener or a UDP one.
type forwarder interface {
	setBackends([]netip.AddrPort)
	close() error
}

// Routed lists the ranges Start made local with a route of its own (a pool inside
// 127.0.0.0/8 needs none).
func (p *Proxy) Routed() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range p.ranges {
		if r.routed() {
			out = append(out, r.prefix)
		}
	}
	return out
}

// OpenConnections counts the forwarded connections still open, both sides counted.
func (p *Proxy) OpenConnections() int { return p.conns.count() }

func sliceServiceKey(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + name}, nil
}
