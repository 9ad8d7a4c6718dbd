// Package devcluster runs a small, real Kubernetes cluster on this machine without Docker:
// etcd, kube-apiserver and kube-controller-manager as child processes on loopback, the
// Gateway API CRDs installed, and optionally a node agent that runs pods as processes in
// network namespaces (package node).
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/false-systems/rauta/test/devcluster/internal/spawn"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/devcluster/svcproxy"
)

// stopGrace is how long a component gets to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// apiServerStopGrace is shorter: after SIGTERM kube-apiserver stops listening within
// milliseconds but keeps the process alive while the controller manager's and the node's
// watch connections stay open (measured: past 10s). Clients see the same closed
// connections either way, so waiting longer only slows restarts down.
const apiServerStopGrace = 3 * time.Second

// Cluster is a running local cluster. Its methods are safe for concurrent use.
type Cluster struct {
	opts     Options
	dir      string
	ownsDir  bool
	bins     Binaries
	layout   layout
	ca       *CA
	admin    *clientcmdapi.Config
	kubeconf string
	rest     *rest.Config

	spawner *spawn.Spawner

	mu        sync.Mutex
	etcd      *process
	apiServer *process
	kcm       *process

	nodeCancel context.CancelFunc
	nodeDone   chan error
	proxy      *svcproxy.Proxy
	proxyLog   *os.File
	stopped    bool
}

// Start launches a cluster and returns once the API server is ready, the controller manager
// has created the default ServiceAccount, the Gateway API CRDs are established and, when
// configured, the node is registered. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	c := &Cluster{opts: opts, spawner: spawn.New()}
	if err := c.start(ctx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if err := c.opts.validate(); err != nil {
		return err
	}
	repoRoot := c.opts.RepoRoot
	if repoRoot == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("working folder: %w", err)
		}
		if repoRoot, err = FindRepoRoot(wd); err != nil {
			return err
		}
	}
	if c.opts.Binaries != nil {
		c.bins = *c.opts.Binaries
		if missing := c.bins.Missing(); len(missing) > 0 {
			return fmt.Errorf("%w: %v", ErrBinariesMissing, missing)
		}
	} else {
		bins, err := EnsureBinaries(ctx, repoRoot, !c.opts.NoBuild)
		if err != nil {
			return err
		}
		c.bins = bins
	}

	if err := c.prepareDir(); err != nil {
		return err
	}
	secrets, err := c.writePKI()
	if err != nil {
		return err
	}
	if err := c.startControlPlane(ctx); err != nil {
		return err
	}
	if !c.opts.SkipGatewayAPI {
		if err := installGatewayAPI(ctx, c.rest, repoRoot, c.opts.StartTimeout); err != nil {
			return err
		}
	}
	if c.opts.Node != nil {
		// Before the node, so pods find their Services answering from the start.
		if err := c.startServiceProxy(ctx); err != nil {
			return err
		}
		if err := c.startNode(ctx, secrets); err != nil {
			return err
		}
	}
	return nil
}

// startServiceProxy runs the service proxy and load balancer (package svcproxy) in this
// process, with the admin identity; its log goes to logs/svcproxy.log.
func (c *Cluster) startServiceProxy(ctx context.Context) error {
	logFile, err := os.OpenFile(filepath.Join(c.dir, "logs", "svcproxy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("service proxy log: %w", err)
	}
	dnsIP, err := clusterDNSIP(c.opts.ServiceCIDR)
	if err != nil {
		logFile.Close()
		return err
	}
	if err := c.createDNSService(ctx, dnsIP); err != nil {
		logFile.Close()
		return err
	}
	restCfg := c.RESTConfig()
	restCfg.UserAgent = "rauta-devcluster-svcproxy"
	p, err := svcproxy.New(svcproxy.Config{
		DNS:              dnsIP,
		ClusterDomain:    ClusterDomain,
		Client:           restCfg,
		ServiceCIDR:      netip.MustParsePrefix(c.opts.ServiceCIDR), // checked by validate
		LoadBalancerCIDR: netip.MustParsePrefix(c.opts.LoadBalancerCIDR),
		NodePortAddr:     netip.MustParseAddr("127.0.0.1"),
		APIServer:        netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(c.layout.apiServerPort)),
		Log:              slog.New(slog.NewTextHandler(logFile, nil)),
	})
	if err != nil {
		logFile.Close()
		return err
	}
	c.mu.Lock()
	c.proxy, c.proxyLog = p, logFile
	c.mu.Unlock()
	startCtx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	if err := p.Start(startCtx); err != nil {
		return fmt.Errorf("service proxy: %w", err)
	}
	return nil
}

func (c *Cluster) prepareDir() error {
	c.dir = c.opts.Dir
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "rauta-devcluster-")
		if err != nil {
			return fmt.Errorf("create cluster folder: %w", err)
		}
		c.dir, c.ownsDir = dir, !c.opts.KeepDir
	}
	for _, sub := range []string{"pki", "logs", "etcd", "apiserver-certs"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o700); err != nil {
			return fmt.Errorf("create cluster folder: %w", err)
		}
	}
	return nil
}

// nodeSecrets are the credentials Start hands to the node agent.
type nodeSecrets struct {
	node, binder, serving KeyPair
}

// writePKI generates every key and certificate, picks the ports and writes the kubeconfigs.
func (c *Cluster) writePKI() (nodeSecrets, error) {
	pki := filepath.Join(c.dir, "pki")
	ports, err := freePorts(3)
	if err != nil {
		return nodeSecrets{}, err
	}
	c.layout = layout{
		dataDir:        c.dir,
		etcdClientPort: ports[0],
		etcdPeerPort:   ports[1],
		apiServerPort:  ports[2],
		serviceCIDR:    c.opts.ServiceCIDR,
		clusterName:    clusterName,
	}
	ca, err := NewCA("rauta-devcluster-ca")
	if err != nil {
		return nodeSecrets{}, err
	}
	c.ca = ca
	c.layout.caCert = filepath.Join(pki, "ca.crt")
	c.layout.caKey = filepath.Join(pki, "ca.key")
	if err := os.WriteFile(c.layout.caCert, ca.CertPEM, 0o644); err != nil {
		return nodeSecrets{}, fmt.Errorf("write ca: %w", err)
	}
	caKey, err := marshalKey(ca.Key)
	if err != nil {
		return nodeSecrets{}, err
	}
	if err := os.WriteFile(c.layout.caKey, caKey, 0o600); err != nil {
		return nodeSecrets{}, fmt.Errorf("write ca key: %w", err)
	}

	_, svcNet, err := net.ParseCIDR(c.opts.ServiceCIDR)
	if err != nil {
		return nodeSecrets{}, fmt.Errorf("options: ServiceCIDR %q: %w", c.opts.ServiceCIDR, err)
	}
	serving, err := ca.Issue(CertRequest{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), firstIP(svcNet)},
		Server:     true,
	})
	if err != nil {
		return nodeSecrets{}, err
	}
	if c.layout.servingCert, c.layout.servingKey, err = serving.WriteFiles(pki, "apiserver"); err != nil {
		return nodeSecrets{}, err
	}
	sa, err := NewServiceAccountKey()
	if err != nil {
		return nodeSecrets{}, err
	}
	if c.layout.saPublicKey, c.layout.saPrivateKey, err = sa.WriteFiles(pki, "service-account"); err != nil {
		return nodeSecrets{}, err
	}
	kubeletClient, err := ca.Issue(CertRequest{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		return nodeSecrets{}, err
	}
	if c.layout.kubeletClientCert, c.layout.kubeletClKey, err = kubeletClient.WriteFiles(pki, "apiserver-kubelet-client"); err != nil {
		return nodeSecrets{}, err
	}

	server := c.serverURL()
	admin, err := ca.Issue(CertRequest{CommonName: "rauta-admin", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		return nodeSecrets{}, err
	}
	c.admin = kubeconfigFor(clusterName, server, ca.CertPEM, "rauta-admin", admin)
	c.kubeconf = filepath.Join(c.dir, "kubeconfig")
	if err := writeKubeconfig(c.admin, c.kubeconf); err != nil {
		return nodeSecrets{}, err
	}
	if c.rest, err = restConfigFor(c.admin); err != nil {
		return nodeSecrets{}, err
	}

	kcm, err := ca.Issue(CertRequest{CommonName: "system:kube-controller-manager", Client: true})
	if err != nil {
		return nodeSecrets{}, err
	}
	c.layout.controllerManagerKubeconfig = filepath.Join(c.dir, "controller-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfigFor(clusterName, server, ca.CertPEM, "system:kube-controller-manager", kcm), c.layout.controllerManagerKubeconfig); err != nil {
		return nodeSecrets{}, err
	}

	var secrets nodeSecrets
	if c.opts.Node != nil {
		name := c.opts.Node.WithDefaults().Name
		// The Node authorizer and NodeRestriction admit exactly this identity for the node.
		if secrets.node, err = ca.Issue(CertRequest{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}, Client: true}); err != nil {
			return nodeSecrets{}, err
		}
		// Nodes may not create pods/binding; the agent binds pods as the scheduler would.
		if secrets.binder, err = ca.Issue(CertRequest{CommonName: "system:kube-scheduler", Client: true}); err != nil {
			return nodeSecrets{}, err
		}
		if secrets.serving, err = ca.Issue(CertRequest{CommonName: name, DNSNames: []string{"localhost", name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}); err != nil {
			return nodeSecrets{}, err
		}
	}
	return secrets, layoutCheck(c.layout)
}

func layoutCheck(l layout) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("cluster layout: %w", err)
	}
	return nil
}

func (c *Cluster) serverURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(c.layout.apiServerPort)
}

func (c *Cluster) startControlPlane(ctx context.Context) error {
	logs := filepath.Join(c.dir, "logs")
	c.mu.Lock()
	c.etcd = newProcess("etcd", c.bins.Etcd, etcdArgs(c.layout), logs)
	err := c.etcd.start(c.spawner)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := waitEtcd(ctx, c.layout.etcdURL(), c.etcd, c.opts.StartTimeout); err != nil {
		return err
	}
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.kcm = newProcess("kube-controller-manager", c.bins.ControllerManager, controllerManagerArgs(c.layout), logs)
	err = c.kcm.start(c.spawner)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return waitDefaultServiceAccount(ctx, c.rest, c.kcm, c.opts.StartTimeout)
}

func (c *Cluster) startNode(ctx context.Context, secrets nodeSecrets) error {
	cfg := c.opts.Node.WithDefaults()
	nodeRest, err := restConfigFor(kubeconfigFor(clusterName, c.serverURL(), c.ca.CertPEM, "node", secrets.node))
	if err != nil {
		return err
	}
	binderRest, err := restConfigFor(kubeconfigFor(clusterName, c.serverURL(), c.ca.CertPEM, "binder", secrets.binder))
	if err != nil {
		return err
	}
	cfg.NodeClient = nodeRest
	cfg.BinderClient = binderRest
	cfg.ServingCertPEM = secrets.serving.CertPEM
	cfg.ServingKeyPEM = secrets.serving.KeyPEM
	cfg.ClientCAPEM = c.ca.CertPEM
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = c.opts.ServiceCIDR
	}
	if cfg.ClusterDNS == "" {
		if ip, err := clusterDNSIP(cfg.ServiceCIDR); err == nil {
			cfg.ClusterDNS, cfg.ClusterDomain = ip.String(), ClusterDomain
		}
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(c.dir, "node")
	}
	// Caller mappings come first, so they can override the echo-basic ones.
	cfg.Images = append(append([]node.ImageMapping(nil), cfg.Images...), node.EchoBasicImages(c.bins.EchoBasic)...)
	agent, err := node.New(cfg)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(runCtx) }()
	c.mu.Lock()
	c.nodeCancel, c.nodeDone = cancel, done
	c.mu.Unlock()

	timer := time.NewTimer(c.opts.StartTimeout)
	defer timer.Stop()
	select {
	case <-agent.Ready():
		return nil
	case err := <-done:
		// Run returned before Ready: hand the error back and keep Stop from waiting again.
		done <- err
		return fmt.Errorf("node agent: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("node agent not ready after %s", c.opts.StartTimeout)
	}
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the same port and
// waits until /readyz answers ok.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return fmt.Errorf("start api server: cluster stopped")
	}
	if c.apiServer != nil {
		if exited, _ := c.apiServer.exited(); !exited {
			c.mu.Unlock()
			return fmt.Errorf("start api server: already running")
		}
	}
	p := newProcess("kube-apiserver", c.bins.APIServer, apiServerArgs(c.layout), filepath.Join(c.dir, "logs"))
	err := p.start(c.spawner)
	c.apiServer = p
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return waitAPIServer(ctx, c.rest, p, c.opts.StartTimeout)
}

// StopAPIServer stops kube-apiserver and leaves etcd, the controller manager and the node
// running, as when a control-plane node restarts.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	p := c.apiServer
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop(apiServerStopGrace)
}

// RestartAPIServer stops kube-apiserver and starts it again, returning once it is ready.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	if err := c.StopAPIServer(); err != nil {
		return err
	}
	return c.StartAPIServer(ctx)
}

// Kubeconfig is the path of an admin kubeconfig (system:masters) for kubectl and clients.
func (c *Cluster) Kubeconfig() string { return c.kubeconf }

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Client returns an admin clientset.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(c.RESTConfig())
}

// ServiceCIDR is the Service ClusterIP range.
func (c *Cluster) ServiceCIDR() string { return c.opts.ServiceCIDR }

// LoadBalancerCIDR is the pool LoadBalancer Services get addresses from; empty when the
// cluster runs no node (and so no service proxy).
func (c *Cluster) LoadBalancerCIDR() string {
	if c.ServiceProxy() == nil {
		return ""
	}
	return c.opts.LoadBalancerCIDR
}

// ServiceProxy is the running service proxy and load balancer (nil without a node). Start
// returns after its listeners for every existing Service are open.
func (c *Cluster) ServiceProxy() *svcproxy.Proxy {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proxy
}

// Dir is the cluster's folder: pki/, logs/ (one file per component), etcd/, node/.
func (c *Cluster) Dir() string { return c.dir }

// Binaries are the executables this cluster runs (kubectl included).
func (c *Cluster) Binaries() Binaries { return c.bins }

// Stop stops the node agent (which removes its pods, namespaces and links), then the
// controller manager, the API server and etcd, and removes the folder it created. It is
// safe to call more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	cancel, done := c.nodeCancel, c.nodeDone
	procs := []*process{c.kcm, c.apiServer, c.etcd}
	proxy, proxyLog := c.proxy, c.proxyLog
	c.mu.Unlock()

	var errs []error
	if proxy != nil {
		// Closes every listener and forwarded connection and removes the local routes.
		if err := proxy.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("service proxy: %w", err))
		}
	}
	if proxyLog != nil {
		proxyLog.Close()
	}
	if cancel != nil {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("node agent: %w", err))
		}
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		if err := p.stop(stopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	// Last: closing ends the thread the components were forked from, which would SIGKILL
	// any of them still alive.
	c.spawner.Close()
	if c.ownsDir && c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster folder: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Pids lists the process ids of the running control-plane components, so tests can check
// that Stop left none behind.
func (c *Cluster) Pids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, p := range []*process{c.etcd, c.apiServer, c.kcm} {
		if p == nil {
			continue
		}
		if exited, _ := p.exited(); !exited {
			pids = append(pids, p.pid())
		}
	}
	return pids
}
