package devcluster

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"net"

	"github.com/false-systems/rauta/internal/freeport"
)

// freePorts returns n distinct loopback ports free now and outside the
// kernel's ephemeral range, so no outgoing connection takes one before the
// component binds it (internal/freeport).
func freePorts(n int) ([]int, error) {
	return freeport.Ports(n)
}

// firstIP is the network address plus one: the ClusterIP the API server gives the
// "kubernetes" Service, which its serving certificate must name.
func firstIP(n *net.IPNet) net.IP {
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	for i := len(ip) - 1; i >= 0; i-- {
		ip[i]++
		if ip[i] != 0 {
			break
		}
	}
	return ip
}

func marshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal ca key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}
