package echoadvanced

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Istio's commands use cobra: flags may come before or after the URL, as --name=value or
// --name value, and int slices repeat or take commas (--port=8080 --port=8443,9443).

// flagSet is a small parser of that style; values of every flag are kept in order.
type flagSet struct {
	values   map[string][]string
	bools    map[string]bool
	aliases  map[string]string
	wantsArg map[string]bool
	args     []string
}

func newFlagSet(valued, boolean []string, aliases map[string]string) *flagSet {
	f := &flagSet{values: map[string][]string{}, bools: map[string]bool{}, aliases: aliases, wantsArg: map[string]bool{}}
	for _, n := range valued {
		f.wantsArg[n] = true
	}
	for _, n := range boolean {
		f.wantsArg[n] = false
	}
	return f
}

func (f *flagSet) parse(argv []string) error {
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			f.args = append(f.args, argv[i+1:]...)
			return nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			f.args = append(f.args, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if full, ok := f.aliases[name]; ok {
			name = full
		}
		valued, known := f.wantsArg[name]
		if !known {
			return fmt.Errorf("unknown flag %s", a)
		}
		if !valued {
			b := true
			if hasValue {
				var err error
				if b, err = strconv.ParseBool(value); err != nil {
					return fmt.Errorf("flag %s: %w", a, err)
				}
			}
			f.bools[name] = b
			continue
		}
		if !hasValue {
			if i+1 >= len(argv) {
				return fmt.Errorf("flag %s needs a value", a)
			}
			i++
			value = argv[i]
		}
		f.values[name] = append(f.values[name], value)
	}
	return nil
}

func (f *flagSet) last(name string) string {
	if v := f.values[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (f *flagSet) ints(name string, def []int) ([]int, error) {
	vs, ok := f.values[name]
	if !ok {
		return def, nil
	}
	var out []int
	for _, v := range vs {
		for p := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n <= 0 || n > 65535 {
				return nil, fmt.Errorf("--%s %q: not a port", name, p)
			}
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *flagSet) int(name string) (int, error) {
	v := f.last(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--%s %q: not a non-negative integer", name, v)
	}
	return n, nil
}

// ParseServerArgs reads the server's flags (Istio's defaults: HTTP 8080, gRPC 7070,
// TCP 9090).
func ParseServerArgs(argv []string) (ServerConfig, error) {
	f := newFlagSet([]string{"port", "grpc", "tcp", "tls", "crt", "key", "version", "cluster", "namespace"}, nil, nil)
	if err := f.parse(argv); err != nil {
		return ServerConfig{}, err
	}
	if len(f.args) > 0 {
		return ServerConfig{}, fmt.Errorf("unexpected arguments %q", f.args)
	}
	var cfg ServerConfig
	var err error
	if cfg.HTTPPorts, err = f.ints("port", []int{8080}); err != nil {
		return cfg, err
	}
	if cfg.GRPCPorts, err = f.ints("grpc", []int{7070}); err != nil {
		return cfg, err
	}
	if cfg.TCPPorts, err = f.ints("tcp", []int{9090}); err != nil {
		return cfg, err
	}
	if cfg.TLSPorts, err = f.ints("tls", nil); err != nil {
		return cfg, err
	}
	seen := map[int]bool{}
	var uniq []int
	for _, p := range cfg.HTTPPorts {
		if !seen[p] {
			seen[p] = true
			uniq = append(uniq, p)
		}
	}
	cfg.HTTPPorts = uniq
	for _, p := range append(append([]int(nil), cfg.GRPCPorts...), cfg.TCPPorts...) {
		if seen[p] {
			return cfg, fmt.Errorf("port %d given twice", p)
		}
		seen[p] = true
	}
	for _, p := range cfg.TLSPorts {
		if !seen[p] {
			return cfg, fmt.Errorf("--tls %d: not one of the --port, --grpc or --tcp ports", p)
		}
	}
	cfg.Cert, cfg.Key = f.last("crt"), f.last("key")
	cfg.Version, cfg.Cluster, cfg.Namespace = f.last("version"), f.last("cluster"), f.last("namespace")
	return cfg, nil
}

// ParseClientArgs reads `client URL [flags]`.
func ParseClientArgs(argv []string) (ClientConfig, error) {
	f := newFlagSet([]string{"method", "header", "count", "timeout", "qps"}, []string{"http2", "insecure-skip-verify"}, map[string]string{"H": "header"})
	if err := f.parse(argv); err != nil {
		return ClientConfig{}, err
	}
	if len(f.args) != 1 {
		return ClientConfig{}, fmt.Errorf("want exactly one URL, got %q", f.args)
	}
	cfg := ClientConfig{URL: f.args[0], Method: f.last("method"), Headers: f.values["header"], HTTP2: f.bools["http2"], Insecure: f.bools["insecure-skip-verify"]}
	var err error
	if cfg.Count, err = f.int("count"); err != nil {
		return cfg, err
	}
	if cfg.QPS, err = f.int("qps"); err != nil {
		return cfg, err
	}
	if v := f.last("timeout"); v != "" {
		if cfg.Timeout, err = time.ParseDuration(v); err != nil {
			return cfg, fmt.Errorf("--timeout %q: %w", v, err)
		}
	}
	return cfg, nil
}
