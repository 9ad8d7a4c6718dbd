package mesh

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/false-systems/rauta/internal/proxy"
)

// DefaultPinDir is where the agent pins its maps and links.
const DefaultPinDir = "/sys/fs/bpf/rauta-mesh"

// Config is everything "rauta mesh" can be told.
type Config struct {
	Cgroup       string
	PinDir       string
	KeepAttached bool
	AdminAddr    string
	MetricsAddr  string
	Kubeconfig   string
	NodeName     string
	LogLevel     string
	// ProxyAddr is where the GAMMA mesh proxy listens and where the
	// programs steer connections to Services with HTTPRoutes. An empty
	// host is NODE_IP's (the node's address, which every pod reaches);
	// empty as a whole turns the proxy and GAMMA off.
	ProxyAddr string
	// StatusLease is the Lease ("namespace/name"; Run puts a bare name in
	// the agent's namespace) whose holder writes the GAMMA route status;
	// empty: no agent writes it.
	StatusLease string
	// Sockmap shortcuts TCP between two local addresses (Options.Sockmap).
	Sockmap bool
	// ProxySpares bounds the mesh proxy's goroutines kept waiting for
	// the next connection; 0 is DefaultSpareAcceptors, negative none.
	ProxySpares int
	// MaxWorkloadValues bounds the distinct values of each workload label
	// of the mesh proxy's HTTP metrics (proxy.Options.MaxPeerValues).
	MaxWorkloadValues int
	// RemoteWorkloads watches the metadata of every pod of the cluster,
	// so the mesh proxy's metrics name the workloads of endpoints on
	// other nodes (remotepods.go); off, they are "unknown".
	RemoteWorkloads bool

	// HoldOff and MaxDelay batch bursts of Service and EndpointSlice
	// events into one map update (internal/provider/kube Coalescer).
	HoldOff, MaxDelay time.Duration

	// OnSync, when set, is called after every map update with the State
	// written and the update's error. Not a flag: for tests and embedders.
	OnSync func(State, error)
}

// RegisterFlags binds c to fs with the defaults. Every flag also reads
// RAUTA_<FLAG> (the command applies cli.EnvDefaults); an empty -kubeconfig
// or -node-name is taken from KUBECONFIG or NODE_NAME when Run starts (not
// as the flag's default, so the help does not depend on the environment).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Cgroup, "cgroup", DefaultCgroup, "cgroup v2 directory whose processes (and their descendants') get Service routing; the default is the whole node (on a hybrid host its cgroup2 mount, e.g. /sys/fs/cgroup/unified)")
	fs.StringVar(&c.PinDir, "pin-dir", DefaultPinDir, "directory on a BPF file system where maps and links are pinned, so a restarted agent takes them over without a gap; empty pins nothing")
	fs.BoolVar(&c.KeepAttached, "keep-attached", false, "on exit leave the programs attached and the maps pinned (Service routing keeps working until the next agent takes over); otherwise detach and remove the pins")
	fs.BoolVar(&c.Sockmap, "sockmap", false, "put established TCP connections between two addresses of this node (the mesh proxy and this node's pods, known with GAMMA on) into a sockhash and pass their payload socket to socket, skipping TCP/IP; off by default (docs/mesh.md, sockmap, says why)")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:9092", "address of /metrics, /healthz, /readyz, /config_dump (the frontends and endpoints) and /status (keep it on loopback)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "address of /metrics, /healthz and /readyz only, for probes and Prometheus; empty disables")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig for running outside a pod (else env KUBECONFIG); empty uses the in-cluster config")
	fs.StringVar(&c.NodeName, "node-name", "", "this node's name, for Services with internalTrafficPolicy Local (else env NODE_NAME)")
	fs.StringVar(&c.ProxyAddr, "proxy-addr", fmt.Sprintf(":%d", DefaultProxyPort), "address of the GAMMA mesh proxy, to which connections to Services with HTTPRoutes are steered; it must be reachable from the pods (an empty host is env NODE_IP, the node's address); empty turns GAMMA off")
	fs.IntVar(&c.ProxySpares, "proxy-spare-goroutines", DefaultSpareAcceptors, "goroutines of the GAMMA mesh proxy kept, once their connection is done, to accept and serve the next one (each keeps its grown stack, typically 8 to 32 KiB); more connections than that at once start goroutines of their own; 0 is the default, -1 keeps none")
	fs.StringVar(&c.StatusLease, "status-lease", "rauta-mesh-status", "Lease whose holder (one agent of the cluster) writes the status of HTTPRoutes with a Service parent: a name in the agent's namespace (env POD_NAMESPACE, else the service account's), or namespace/name; empty writes no status")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&c.MaxWorkloadValues, "max-workload-values", proxy.DefaultMaxPeerValues, "distinct values each workload label (source_workload, source_workload_namespace, destination_workload, destination_workload_namespace) of the mesh proxy's HTTP metrics takes; further ones are recorded as _OTHER and counted in rauta_mesh_workload_label_overflow_total")
	fs.BoolVar(&c.RemoteWorkloads, "remote-workloads", true, "with GAMMA on, watch the metadata of every pod of the cluster (kept: namespace, name and workload, about 0.4 KiB a pod, docs/telemetry.md) so destination_workload names endpoints on other nodes; off, they are \"unknown\"")
	c.HoldOff, c.MaxDelay = 100*time.Millisecond, time.Second
}

// Logger builds the JSON logger of c.LogLevel.
func (c *Config) Logger(w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
