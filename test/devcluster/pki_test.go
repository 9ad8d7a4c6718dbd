package devcluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
)

func TestIssueChainsToCA(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(CertRequest{CommonName: "kube-apiserver", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving cert does not verify for 127.0.0.1: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("serving-only cert verified as a client certificate")
	}

	client, err := ca.Issue(CertRequest{CommonName: "system:node:n1", Organization: []string{"system:nodes"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(client.CertPEM)
	cc, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Subject.CommonName != "system:node:n1" || len(cc.Subject.Organization) != 1 || cc.Subject.Organization[0] != "system:nodes" {
		t.Errorf("subject %v, want CN system:node:n1 O system:nodes", cc.Subject)
	}
	if _, err := cc.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert does not verify: %v", err)
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(CertRequest{Server: true}); err == nil {
		t.Error("empty common name accepted")
	}
	if _, err := ca.Issue(CertRequest{CommonName: "x"}); err == nil {
		t.Error("certificate without usage accepted")
	}
}

func TestServiceAccountKeyIsPEM(t *testing.T) {
	kp, err := NewServiceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := pem.Decode(kp.CertPEM)
	if pub == nil || pub.Type != "PUBLIC KEY" {
		t.Fatalf("public key block %v", pub)
	}
	if _, err := x509.ParsePKIXPublicKey(pub.Bytes); err != nil {
		t.Fatal(err)
	}
	priv, _ := pem.Decode(kp.KeyPEM)
	if priv == nil {
		t.Fatal("no private key block")
	}
	if _, err := x509.ParsePKCS8PrivateKey(priv.Bytes); err != nil {
		t.Fatal(err)
	}
}
