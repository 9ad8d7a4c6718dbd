package devcluster

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func testLayout() layout {
	return layout{
		dataDir: "/d", etcdClientPort: 2379, etcdPeerPort: 2380, apiServerPort: 6443,
		caCert: "/d/pki/ca.crt", caKey: "/d/pki/ca.key", servingCert: "/d/pki/apiserver.crt", servingKey: "/d/pki/apiserver.key",
		saPublicKey: "/d/pki/sa.crt", saPrivateKey: "/d/pki/sa.key", kubeletClientCert: "/d/pki/kc.crt", kubeletClKey: "/d/pki/kc.key",
		controllerManagerKubeconfig: "/d/kcm.kubeconfig", serviceCIDR: "10.96.0.0/24", clusterName: "c",
	}
}

// Every component listens on loopback only and agrees with the others on ports and files.
func TestComponentArgs(t *testing.T) {
	l := testLayout()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"etcd", etcdArgs(l), []string{"--listen-client-urls=http://127.0.0.1:2379", "--listen-peer-urls=http://127.0.0.1:2380", "--data-dir=/d/etcd"}},
		{"kube-apiserver", apiServerArgs(l), []string{
			"--etcd-servers=http://127.0.0.1:2379", "--bind-address=127.0.0.1", "--secure-port=6443",
			"--client-ca-file=/d/pki/ca.crt", "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
			"--service-account-signing-key-file=/d/pki/sa.key", "--service-account-key-file=/d/pki/sa.crt",
			"--kubelet-certificate-authority=/d/pki/ca.crt", "--service-cluster-ip-range=10.96.0.0/24",
		}},
		{"kube-controller-manager", controllerManagerArgs(l), []string{
			"--kubeconfig=/d/kcm.kubeconfig", "--bind-address=127.0.0.1", "--service-account-private-key-file=/d/pki/sa.key",
			"--root-ca-file=/d/pki/ca.crt", "--use-service-account-credentials=true", "--allocate-node-cidrs=false",
		}},
	}
	for _, tt := range tests {
		for _, w := range tt.want {
			if !slices.Contains(tt.args, w) {
				t.Errorf("%s args lack %q: %v", tt.name, w, tt.args)
			}
		}
		for _, a := range tt.args {
			if strings.Contains(a, "0.0.0.0") {
				t.Errorf("%s listens beyond loopback: %q", tt.name, a)
			}
		}
	}
}

func TestLayoutValidate(t *testing.T) {
	l := testLayout()
	if err := l.validate(); err != nil {
		t.Fatal(err)
	}
	l.apiServerPort = 70000
	if err := l.validate(); err == nil || !strings.Contains(err.Error(), "api server port") {
		t.Errorf("error %v, want one naming the api server port", err)
	}
}

func TestFirstIP(t *testing.T) {
	for cidr, want := range map[string]string{"10.96.0.0/24": "10.96.0.1", "10.0.255.0/23": "10.0.254.1", "192.168.1.0/30": "192.168.1.1"} {
		_, n, _ := net.ParseCIDR(cidr)
		if got := firstIP(n).String(); got != want {
			t.Errorf("firstIP(%s) = %s, want %s", cidr, got, want)
		}
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: not distinct positive ports", ports)
		}
		seen[p] = true
	}
}
