package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/gateway-api/pkg/features"

	"github.com/false-systems/rauta/internal/cli"
	"github.com/false-systems/rauta/internal/controller"
)

func runController(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rauta controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c cli.Common
	c.Register(fs)
	host, _ := os.Hostname()
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file; empty uses the in-cluster service account")
	pool := fs.String("address-pool", "", "CIDR from which each Gateway without spec.addresses gets its own address")
	provisioner := fs.String("provisioner", controller.ProvisionerKubernetes, "kubernetes: a data-plane Deployment and Service per Gateway; inprocess: this process serves every Gateway itself")
	namespace := fs.String("namespace", ownNamespace(), "the controller's namespace (its CA Secret, its Service, the Lease)")
	ctrlService := fs.String("controller-service", "rauta-controller", "the Service in -namespace that data planes dial (its port named config)")
	configListen := fs.String("config-listen", ":18443", "listen address of the config stream data planes dial (TLS)")
	dataPlaneImage := fs.String("dataplane-image", "", "image of data-plane pods (the kubernetes provisioner), unless GatewayParameters name one")
	gatewayClass := fs.String("gateway-class", "", "serve only this GatewayClass (default: every class whose controllerName is -controller-name)")
	secretNamespaces := fs.String("secret-namespaces", "", "comma-separated namespaces whose Secrets may be read (default: every namespace)")
	leaseNS := fs.String("lease-namespace", "", "namespace of the status-writer Lease (default: -namespace)")
	leaseName := fs.String("lease-name", "rauta-status-writer", "name of the status-writer Lease")
	identity := fs.String("identity", fmt.Sprintf("%s-%d", host, os.Getpid()), "this replica's name in the Lease")
	featureList := fs.String("supported-features", "", "comma-separated Gateway API features written to GatewayClass status (default: what RAUTA passes conformance for with -provisioner)")
	holdOff := fs.Duration("hold-off", 10*time.Millisecond, "quiet time that ends a burst of API events; stretched to the last translation's cost (a lone event after a quiet spell runs at once)")
	maxDelay := fs.Duration("max-delay", 500*time.Millisecond, "longest a burst of API events delays a translation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := c.Finish(fs, stdout, stderr, version)
	if err != nil {
		return err
	}
	rest, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if *leaseNS == "" {
		*leaseNS = *namespace
	}
	claimed := controller.SupportedFeatures(*provisioner)
	if *featureList != "" {
		claimed = nil
		for _, f := range splitList(*featureList) {
			claimed = append(claimed, features.FeatureName(f))
		}
	}
	return controller.Run(ctx, controller.Config{
		Options:           c.Opts,
		REST:              rest,
		ControllerName:    c.ControllerName,
		AddressPool:       *pool,
		LeaseNamespace:    *leaseNS,
		LeaseName:         *leaseName,
		Identity:          *identity,
		SupportedFeatures: controller.StatusFeatures(claimed),
		HoldOff:           *holdOff,
		MaxDelay:          *maxDelay,
		Provisioner:       *provisioner,
		Namespace:         *namespace,
		ControllerService: *ctrlService,
		ConfigListen:      *configListen,
		DataPlaneImage:    *dataPlaneImage,
		GatewayClass:      *gatewayClass,
		SecretNamespaces:  splitList(*secretNamespaces),
	}, logger)
}

// ownNamespace is the namespace of the pod's ServiceAccount, "default"
// outside a cluster.
func ownNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return "default"
	}
	return strings.TrimSpace(string(b))
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
