package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/false-systems/rauta/test/devcluster/internal/spawn"
)

// hostIP is the node's address: loopback, where its log endpoint listens and from where
// the API server reaches it.
const hostIP = "127.0.0.1"

// resyncPeriod re-delivers every pod so failed deletes and status writes are retried.
const resyncPeriod = 30 * time.Second

// Agent is a running node. Create it with New, run it with Run.
type Agent struct {
	cfg    Config
	prefix netip.Prefix
	node   kubernetes.Interface
	binder kubernetes.Interface
	ready  chan struct{}

	lister corelisters.PodLister
	deps   *workerDeps

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup
}

// New checks cfg and builds the API clients; it changes nothing on the host.
func New(cfg Config) (*Agent, error) {
	cfg = cfg.WithDefaults()
	prefix, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	nodeCS, err := kubernetes.NewForConfig(cfg.NodeClient)
	if err != nil {
		return nil, fmt.Errorf("node client: %w", err)
	}
	binderCS, err := kubernetes.NewForConfig(cfg.BinderClient)
	if err != nil {
		return nil, fmt.Errorf("binder client: %w", err)
	}
	return &Agent{cfg: cfg, prefix: prefix, node: nodeCS, binder: binderCS, ready: make(chan struct{}), workers: map[types.UID]*podWorker{}}, nil
}

// Ready is closed once the bridge exists, the Node is registered and Ready, and the pod
// watches are synced.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run sets up the network, registers the node and runs pods until ctx ends; then it
// stops every container and removes every namespace, link and the bridge it created.
func (a *Agent) Run(ctx context.Context) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("node agent needs root (network namespaces, veth pairs, a bridge)")
	}
	if err := os.MkdirAll(a.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	network, err := setupNetwork(a.cfg.Bridge, a.prefix, a.cfg.ServiceCIDR)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, network.close())
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	factory := informers.NewSharedInformerFactoryWithOptions(a.node, resyncPeriod,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.Name).String()
		}))
	podInformer := factory.Core().V1().Pods()
	a.lister = podInformer.Lister()
	getPod := func(ns, name string) (*corev1.Pod, bool) {
		p, err := a.lister.Pods(ns).Get(name)
		return p, err == nil
	}

	cgroups, err := setupCgroups(a.cfg.CgroupRoot, a.cfg.Bridge, a.cfg.CgroupKillWait)
	if err != nil {
		return err
	}
	// Removed after the workers stopped (defers run in reverse order).
	defer func() {
		err = errors.Join(err, cgroups.close())
	}()
	execs := newExecTargets()
	execSrv := &execServer{
		exec:          executor{targets: execs},
		getPod:        getPod,
		slots:         make(chan struct{}, a.cfg.MaxExecs),
		idleTimeout:   a.cfg.ExecIdleTimeout,
		createTimeout: a.cfg.ExecStreamCreationTimeout,
	}

	logs, err := newLogServer(a.cfg.ServingCertPEM, a.cfg.ServingKeyPEM, a.cfg.ClientCAPEM, a.cfg.StateDir, getPod, execSrv)
	if err != nil {
		return err
	}
	logErr := make(chan error, 1)
	go func() { logErr <- logs.serve() }()
	defer func() {
		err = errors.Join(err, logs.close(), <-logErr)
	}()

	spawner := spawn.New()
	imageSpawner := spawn.New(spawn.WithNoNewPrivs())
	// Closed after the workers stopped their containers (defers run in reverse order).
	defer spawner.Close()
	defer imageSpawner.Close()
	imagesDir := filepath.Join(a.cfg.StateDir, "images")
	// Unpacked images go once every pod is gone (defers run in reverse order).
	defer func() {
		err = errors.Join(err, os.RemoveAll(imagesDir))
	}()
	a.deps = &workerDeps{
		spawner:       spawner,
		imageSpawner:  imageSpawner,
		store:         newImageStore(imagesDir),
		tokens:        apiTokenRequester(a.node),
		cgroups:       cgroups,
		execs:         execs,
		clusterDNS:    a.cfg.ClusterDNS,
		clusterDomain: a.cfg.ClusterDomain,
		client:        a.node,
		net:           network,
		images:        a.cfg.Images,
		stateDir:      a.cfg.StateDir,
		hostIP:        hostIP,
		getPod:        getPod,
		refs:          apiRefs{cs: a.node},
		apiService:    apiServiceIP(a.cfg.ServiceCIDR),
	}
	// Workers stop before the network is removed (defers run in reverse order).
	defer func() {
		cancel()
		a.wg.Wait()
	}()

	if err := registerNode(ctx, a.node, nodeObject(a.cfg.Name, a.prefix.String(), hostIP, logs.port(), metav1.Now())); err != nil {
		return err
	}
	go heartbeat(ctx, a.node, a.cfg.Name, a.cfg.HeartbeatInterval)

	podQueue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer podQueue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			podQueue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("watch pods of node %s: %w", a.cfg.Name, err)
	}

	binderFactory := informers.NewSharedInformerFactoryWithOptions(a.binder, resyncPeriod,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
		}))
	bindQueue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer bindQueue.ShutDown()
	unscheduled := binderFactory.Core().V1().Pods()
	if _, err := unscheduled.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { enqueueKey(bindQueue, obj) },
		UpdateFunc: func(_, obj any) { enqueueKey(bindQueue, obj) },
	}); err != nil {
		return fmt.Errorf("watch unscheduled pods: %w", err)
	}

	factory.Start(ctx.Done())
	binderFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer binderFactory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync %v watch: %w", typ, context.Cause(ctx))
		}
	}
	for typ, ok := range binderFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync %v watch: %w", typ, context.Cause(ctx))
		}
	}

	var queues sync.WaitGroup
	queues.Go(func() { a.runQueue(ctx, podQueue, a.syncPod) })
	queues.Go(func() { a.runQueue(ctx, bindQueue, a.bindFunc(unscheduled.Lister())) })
	close(a.ready)
	<-ctx.Done()
	// No new workers after this point, so the deferred wait for workers is final.
	podQueue.ShutDown()
	bindQueue.ShutDown()
	queues.Wait()
	return nil
}

func (a *Agent) bindFunc(lister corelisters.PodLister) func(context.Context, string) error {
	return func(ctx context.Context, key string) error {
		ns, name, err := cache.SplitMetaNamespaceKey(key)
		if err != nil {
			return fmt.Errorf("pod key %q: %w", key, err)
		}
		pod, err := lister.Pods(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return nil // bound or deleted meanwhile
		}
		if err != nil {
			return err
		}
		if !wantsBinding(pod) {
			return nil
		}
		return bind(ctx, a.binder, pod, a.cfg.Name)
	}
}

func enqueueKey(q workqueue.TypedRateLimitingInterface[string], obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		q.Add(key)
	}
}

// runQueue processes keys one at a time; a failed key is retried with backoff.
func (a *Agent) runQueue(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	for {
		key, shutdown := q.Get()
		if shutdown {
			return
		}
		if err := sync(ctx, key); err != nil && ctx.Err() == nil {
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

// syncPod brings the workers of one pod name in line with the API server: start a worker
// for a new pod, stop the worker of a deleted or replaced one.
func (a *Agent) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.lister.Pods(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if apierrors.IsNotFound(err) {
		pod = nil
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for uid, w := range a.workers {
		if w.pod.Namespace == ns && w.pod.Name == name && (pod == nil || pod.UID != uid) {
			w.terminate(0)
		}
	}
	if pod == nil {
		return nil
	}
	w := a.workers[pod.UID]
	if pod.DeletionTimestamp != nil {
		if w != nil {
			w.terminate(deletionGrace(pod))
			return nil
		}
		// Nothing runs for it here (finished, or the agent restarted): finish the delete.
		zero := int64(0)
		uid := pod.UID
		err := a.node.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		return nil
	}
	if w != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	w = newPodWorker(a.deps, pod)
	a.workers[pod.UID] = w
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		w.run(ctx)
		a.mu.Lock()
		delete(a.workers, pod.UID)
		a.mu.Unlock()
	}()
	return nil
}

func deletionGrace(pod *corev1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// apiRefs reads ConfigMaps and Secrets with the node's identity; the Node authorizer
// allows exactly those referenced by pods bound to this node.
type apiRefs struct{ cs kubernetes.Interface }

func (r apiRefs) configMap(ctx context.Context, ns, name string) (map[string]string, error) {
	cm, err := r.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

func (r apiRefs) secret(ctx context.Context, ns, name string) (map[string][]byte, error) {
	s, err := r.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}
