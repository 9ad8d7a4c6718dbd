package devcluster

import (
	"fmt"
	"strconv"
)

// layout holds every file and port the components share; the argument builders below are
// pure functions of it so they can be checked without starting anything.
type layout struct {
	dataDir string

	etcdClientPort int
	etcdPeerPort   int
	apiServerPort  int

	caCert, caKey                   string
	servingCert, servingKey         string
	saPublicKey, saPrivateKey       string
	kubeletClientCert, kubeletClKey string

	controllerManagerKubeconfig string

	serviceCIDR string
	clusterName string
}

func (l layout) etcdURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(l.etcdClientPort)
}

func etcdArgs(l layout) []string {
	peer := "http://127.0.0.1:" + strconv.Itoa(l.etcdPeerPort)
	return []string{
		"--name=devcluster",
		"--data-dir=" + l.dataDir + "/etcd",
		"--listen-client-urls=" + l.etcdURL(),
		"--advertise-client-urls=" + l.etcdURL(),
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=devcluster=" + peer,
		"--initial-cluster-state=new",
		// A throwaway store: skipping fsync makes the API server's writes several times
		// faster on shared disks, and nothing survives the cluster anyway.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}
}

func apiServerArgs(l layout) []string {
	return []string{
		"--etcd-servers=" + l.etcdURL(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(l.apiServerPort),
		"--cert-dir=" + l.dataDir + "/apiserver-certs",
		"--tls-cert-file=" + l.servingCert,
		"--tls-private-key-file=" + l.servingKey,
		"--client-ca-file=" + l.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + l.saPublicKey,
		"--service-account-signing-key-file=" + l.saPrivateKey,
		"--service-cluster-ip-range=" + l.serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// EndpointSlices reject loopback addresses, so the reconciler of the "kubernetes"
		// Service could never publish 127.0.0.1; nothing in the cluster dials it.
		"--endpoint-reconciler-type=none",
		"--kubelet-certificate-authority=" + l.caCert,
		"--kubelet-client-certificate=" + l.kubeletClientCert,
		"--kubelet-client-key=" + l.kubeletClKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false",
		"--v=1",
	}
}

func controllerManagerArgs(l layout) []string {
	return []string{
		"--kubeconfig=" + l.controllerManagerKubeconfig,
		"--bind-address=127.0.0.1",
		// 0 turns off the secure serving port: nothing scrapes it and it would need a port.
		"--secure-port=0",
		"--cluster-name=" + l.clusterName,
		"--service-cluster-ip-range=" + l.serviceCIDR,
		"--allocate-node-cidrs=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + l.saPrivateKey,
		"--root-ca-file=" + l.caCert,
		"--cluster-signing-cert-file=" + l.caCert,
		"--cluster-signing-key-file=" + l.caKey,
		"--leader-elect=false",
		// The default set: endpointslice, deployment, replicaset, namespace, garbage
		// collector, serviceaccount and its tokens, node lifecycle, ...
		"--controllers=*",
		"--v=1",
	}
}

func (l layout) validate() error {
	for name, port := range map[string]int{"etcd client": l.etcdClientPort, "etcd peer": l.etcdPeerPort, "api server": l.apiServerPort} {
		if port <= 0 || port > 65535 {
			return fmt.Errorf("%s port %d out of range", name, port)
		}
	}
	if l.dataDir == "" {
		return fmt.Errorf("empty data folder")
	}
	return nil
}
