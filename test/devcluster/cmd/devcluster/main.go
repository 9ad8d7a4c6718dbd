// Command devcluster runs the local cluster in the foreground until SIGINT or SIGTERM:
// etcd, kube-apiserver, kube-controller-manager, the Gateway API CRDs and a node agent.
// hack/devcluster.sh runs it in the background for people; tests use package devcluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "state folder (certificates, kubeconfig, etcd data, logs); wiped at start")
	withNode := flag.Bool("node", true, "run a node agent (needs root)")
	podCIDR := flag.String("pod-cidr", envOr("RAUTA_DEVCLUSTER_POD_CIDR", "10.244.0.0/24"), "pod address range (env RAUTA_DEVCLUSTER_POD_CIDR)")
	bridge := flag.String("bridge", envOr("RAUTA_DEVCLUSTER_BRIDGE", "rauta0"), "bridge name, at most 6 characters (env RAUTA_DEVCLUSTER_BRIDGE)")
	serviceCIDR := flag.String("service-cidr", envOr("RAUTA_DEVCLUSTER_SERVICE_CIDR", "10.96.0.0/24"), "Service ClusterIP range (env RAUTA_DEVCLUSTER_SERVICE_CIDR)")
	lbCIDR := flag.String("lb-cidr", envOr("RAUTA_DEVCLUSTER_LB_CIDR", "127.0.200.0/24"), "LoadBalancer address pool (env RAUTA_DEVCLUSTER_LB_CIDR)")
	repo := flag.String("repo", "", "rauta checkout (default: found from the working folder)")
	echoAdvanced := flag.Bool("echo-advanced", false, "build the echo-advanced stand-in (test/devcluster/echoadvanced) into the state folder and map registry.k8s.io/gateway-api/echo-advanced to it, for the mesh conformance suite")
	var images imageFlags
	flag.Var(&images, "image", "extra image mapping REPOSITORY=BINARY or REPOSITORY=OCI_LAYOUT_FOLDER, repeatable (e.g. ghcr.io/false-systems/rauta=./dist/oci)")
	flag.Parse()
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return fmt.Errorf("wipe %s: %w", abs, err)
	}
	opts := devcluster.Options{Dir: abs, KeepDir: true, RepoRoot: *repo, ServiceCIDR: *serviceCIDR, LoadBalancerCIDR: *lbCIDR}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *echoAdvanced {
		root := *repo
		if root == "" {
			wd, _ := os.Getwd()
			if root, err = devcluster.FindRepoRoot(wd); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return err
		}
		layout, err := devcluster.BuildEchoAdvancedImage(ctx, root, abs)
		if err != nil {
			return err
		}
		images = append(images, node.EchoAdvancedImages(layout)...)
	}
	if *withNode {
		opts.Node = &node.Config{PodCIDR: *podCIDR, Bridge: *bridge, Images: images}
	}
	c, err := devcluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Printf("cluster ready\nexport KUBECONFIG=%s\n", c.Kubeconfig())
	if err := os.WriteFile(filepath.Join(abs, "ready"), []byte(c.Kubeconfig()+"\n"), 0o644); err != nil {
		return errors.Join(err, c.Stop())
	}
	<-ctx.Done()
	fmt.Println("stopping")
	os.Remove(filepath.Join(abs, "ready"))
	return c.Stop()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// imageFlags collects -image REPOSITORY=PATH mappings: a file is a binary run on the host,
// a folder an OCI image layout the node agent unpacks and runs chrooted. Paths become
// absolute because pods run with their own working folder.
type imageFlags []node.ImageMapping

func (f *imageFlags) String() string { return fmt.Sprint(*f) }

func (f *imageFlags) Set(v string) error {
	repo, p, ok := strings.Cut(v, "=")
	if !ok || repo == "" || p == "" {
		return fmt.Errorf("want REPOSITORY=BINARY or REPOSITORY=OCI_LAYOUT_FOLDER, got %q", v)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("image %s: %w", repo, err)
	}
	if !info.IsDir() {
		*f = append(*f, node.ImageMapping{Repository: repo, Binary: abs})
		return nil
	}
	if _, err := os.Stat(filepath.Join(abs, "index.json")); err != nil {
		return fmt.Errorf("image %s: %s is a folder but not an OCI image layout (no index.json)", repo, abs)
	}
	*f = append(*f, node.ImageMapping{Repository: repo, Layout: abs})
	return nil
}
