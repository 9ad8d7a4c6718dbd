package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/image"
	"github.com/false-systems/rauta/internal/provider/kube"
	"github.com/false-systems/rauta/test/chartinstall"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/integration/harness"
)

const (
	namespace      = "bench"
	className      = "bench-propagation"
	controllerName = "rauta.io/bench-propagation"
	// Own bridge, pod CIDR and address pool, so the benchmark can run next
	// to the integration and conformance tests.
	bridge      = "rbnch0"
	podCIDR     = "10.244.205.0/24"
	addressPool = "127.0.5.0/24"
	// holderPool is the status writer's own pool in -follower mode.
	holderPool = "127.0.6.0/24"
)

// classYAML is the in-process run's GatewayClass; with -deployed the chart
// makes it.
const classYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: bench-propagation}
spec: {controllerName: rauta.io/bench-propagation}
`

const baseYAML = `
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: bench}
spec:
  gatewayClassName: bench-propagation
  listeners:
  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Same}}}
`

// bench is everything one run set up.
type bench struct {
	cfg     config
	dir     string
	cluster *devcluster.Cluster
	ctrl    *harness.Controller // the measured replica
	holder  *harness.Controller // -follower: the replica that writes status
	cl      client.Client
	addr    string // gateway address:80
	log     io.Writer
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// setUp starts the cluster, the echo Deployment, the Gateway and the
// controller, and waits until the Gateway has its address.
func setUp(ctx context.Context, cfg config, log io.Writer) (*bench, error) {
	dir, err := os.MkdirTemp("", "rauta-propagation-")
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, dir: dir, log: log}
	ok := false
	defer func() {
		if !ok {
			b.tearDown()
		}
	}()
	wd, _ := os.Getwd()
	root, err := devcluster.FindRepoRoot(wd)
	if err != nil {
		return nil, err
	}
	if cfg.deployed {
		if err := b.setUpDeployed(ctx, root); err != nil {
			return nil, err
		}
		ok = true
		return b, nil
	}
	b.logf("building rauta")
	bin, err := harness.BuildRauta(ctx, root, dir)
	if err != nil {
		return nil, err
	}
	b.logf("starting the local cluster (bridge %s, pods %s)", bridge, podCIDR)
	b.cluster, err = devcluster.Start(ctx, devcluster.Options{
		Dir: filepath.Join(dir, "cluster"), KeepDir: true, RepoRoot: root,
		Node: &node.Config{Bridge: bridge, PodCIDR: podCIDR, StateDir: filepath.Join(dir, "node")},
	})
	if err != nil {
		return nil, fmt.Errorf("start local cluster: %w", err)
	}
	if err := b.applyBase(ctx, classYAML+"\n---\n"+baseYAML); err != nil {
		return nil, err
	}
	replica := func(identity, pool string) harness.ControllerConfig {
		return harness.ControllerConfig{
			Binary: bin, Kubeconfig: b.cluster.Kubeconfig(), AddressPool: pool,
			ControllerName: controllerName, LeaseName: "bench-propagation", Identity: identity,
			HoldOff: cfg.holdOff, MaxDelay: cfg.maxDelay, LogPath: filepath.Join(dir, identity+".log"),
		}
	}
	if cfg.follower {
		b.logf("starting the status-writing replica")
		if b.holder, err = harness.StartController(ctx, replica("holder", holderPool)); err != nil {
			return nil, err
		}
		if err := b.waitLease(ctx, "holder"); err != nil {
			return nil, err
		}
	}
	b.logf("starting rauta controller")
	if b.ctrl, err = harness.StartController(ctx, replica("bench", addressPool)); err != nil {
		return nil, err
	}
	if _, err := b.gatewayAddress(ctx); err != nil {
		return nil, err
	}
	addr, err := b.servedAddress(ctx)
	if err != nil {
		return nil, err
	}
	b.addr = addr + ":80"
	if err := b.waitEndpoints(ctx); err != nil {
		return nil, err
	}
	ok = true
	return b, nil
}

// applyBase makes the benchmark's client and applies the namespace, the
// Gateway (and what else base holds) and the echo Deployment.
func (b *bench) applyBase(ctx context.Context, base string) error {
	rest := b.cluster.RESTConfig()
	// The benchmark's own client must not be the bottleneck: client-go's
	// default is 5 requests/s.
	rest.QPS, rest.Burst = 500, 1000
	scheme, err := kube.NewScheme()
	if err != nil {
		return err
	}
	if b.cl, err = client.New(rest, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	echo := strings.NewReplacer("@NS@", "bench", "@NAME@", "echo", "@REPLICAS@", "2").Replace(harness.EchoYAML)
	if err := b.cluster.Apply(ctx, []byte(base+"\n---\n"+echo)); err != nil {
		return fmt.Errorf("apply base objects: %w", err)
	}
	return nil
}

// setUpDeployed builds the image, starts a cluster whose node runs it,
// installs the chart (its GatewayClass is the benchmark's) and waits until
// the Gateway serves through its load-balancer address.
func (b *bench) setUpDeployed(ctx context.Context, root string) error {
	b.logf("building the image")
	img, err := image.BuildRepo(ctx, image.BuildOptions{
		RepoRoot: root, OutDir: filepath.Join(b.dir, "dist"), Version: "bench",
		Commands: image.Commands,
	})
	if err != nil {
		return err
	}
	bins, err := devcluster.CacheDir()
	if err != nil {
		return err
	}
	b.logf("starting the local cluster (bridge %s, pods %s)", bridge, podCIDR)
	b.cluster, err = devcluster.Start(ctx, devcluster.Options{
		Dir: filepath.Join(b.dir, "cluster"), KeepDir: true, RepoRoot: root,
		Node: &node.Config{Bridge: bridge, PodCIDR: podCIDR, StateDir: filepath.Join(b.dir, "node"),
			Images: append(node.EchoBasicImages(devcluster.BinariesIn(bins).EchoBasic),
				node.ImageMapping{Repository: image.DefaultRepository, Layout: img.LayoutPath})},
	})
	if err != nil {
		return fmt.Errorf("start local cluster: %w", err)
	}
	var args []any
	if b.cfg.holdOff > 0 {
		args = append(args, "-hold-off="+b.cfg.holdOff.String())
	}
	if b.cfg.maxDelay > 0 {
		args = append(args, "-max-delay="+b.cfg.maxDelay.String())
	}
	if b.cfg.logLevel != "" {
		args = append(args, "-log-level="+b.cfg.logLevel)
	}
	b.logf("installing the chart")
	if err := chartinstall.Install(ctx, b.cluster.Kubeconfig(), "rauta-system", map[string]any{
		"image":        map[string]any{"tag": img.Version},
		"gatewayClass": map[string]any{"name": className, "controllerName": controllerName},
		"controller":   map[string]any{"extraArgs": args},
		"dataPlane":    map[string]any{"replicas": b.cfg.replicas},
	}); err != nil {
		return err
	}
	if err := b.applyBase(ctx, baseYAML); err != nil {
		return err
	}
	addr, err := b.gatewayAddress(ctx)
	if err != nil {
		return err
	}
	b.addr = addr + ":80"
	return b.waitEndpoints(ctx)
}

func (b *bench) gatewayAddress(ctx context.Context) (string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		gw := &gwv1.Gateway{}
		if err := b.cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "gw"}, gw); err == nil && len(gw.Status.Addresses) == 1 {
			return gw.Status.Addresses[0].Value, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("gateway %s/gw got no status address within 2 minutes", namespace)
}

// servedAddress is where the measured replica serves the Gateway.
func (b *bench) servedAddress(ctx context.Context) (string, error) {
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; {
		var a string
		if a, err = b.ctrl.ServedAddress(ctx, namespace+"/gw"); err == nil {
			return a, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("measured replica does not serve the Gateway: %w", err)
}

func (b *bench) waitLease(ctx context.Context, identity string) error {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; {
		l := &coordinationv1.Lease{}
		if err := b.cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: "bench-propagation"}, l); err == nil &&
			l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == identity {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not get the Lease within a minute", identity)
}

// waitEndpoints waits until a warm-up route reaches the echo pods, then
// removes it.
func (b *bench) waitEndpoints(ctx context.Context) error {
	r := newRoute("warmup")
	if err := b.cl.Create(ctx, r); err != nil {
		return fmt.Errorf("create warm-up route: %w", err)
	}
	client := harness.NewClient(time.Second)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep, err := harness.Get(ctx, client, b.addr, hostOf("warmup"), "/")
		if err == nil && rep.Status == 200 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("echo pods not reachable through the gateway within 2 minutes: %w (last reply %+v)", err, rep)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return b.cl.Delete(ctx, r)
}

func (b *bench) tearDown() {
	if b.holder != nil {
		_ = b.holder.Stop(10 * time.Second)
	}
	if b.ctrl != nil {
		if err := b.ctrl.Stop(10 * time.Second); err != nil && !strings.Contains(err.Error(), "signal") {
			b.logf("stop controller: %v", err)
		}
	}
	if b.cluster != nil {
		if b.cfg.keepLogs {
			b.keepPodLogs()
		}
		if err := b.cluster.Stop(); err != nil {
			b.logf("stop local cluster: %v", err)
		}
	}
	if b.cfg.keepLogs {
		b.logf("logs kept in %s", b.dir)
		return
	}
	os.RemoveAll(b.dir)
}

// keepPodLogs copies the pods' logs (the node agent removes them with the
// pods) to podlogs/ in the run's folder.
func (b *bench) keepPodLogs() {
	logs, _ := filepath.Glob(filepath.Join(b.dir, "node", "pods", "*", "*.log"))
	out := filepath.Join(b.dir, "podlogs")
	if err := os.MkdirAll(out, 0o755); err != nil {
		b.logf("keep pod logs: %v", err)
		return
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(out, filepath.Base(filepath.Dir(l))+"-"+filepath.Base(l)), data, 0o644)
		}
		if err != nil {
			b.logf("keep pod log %s: %v", l, err)
		}
	}
}
