package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// clientCA issues client certificates.
type clientCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newClientCA(t *testing.T, name string) *clientCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &clientCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *clientCA) issue(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientCertificateValidation: a listener with a CA bundle serves
// clients whose certificate chains to it and refuses the handshake of
// others (none, or another CA's); AllowInsecureFallback lets them all in;
// Apply adds and removes the check on the open socket.
func TestClientCertificateValidation(t *testing.T) {
	be := newEchoBackend(t, "a")
	good, other := newClientCA(t, "good"), newClientCA(t, "other")
	goodCert, otherCert := good.issue(t), other.issue(t)
	server := newTestCert(t, "server", []string{"example.org"}, "")
	listener := func(cv *ir.ClientValidation) *ir.Snapshot {
		l := httpsListener("tls", []ir.Certificate{server.ir}, catchAll(prefixRoute("r", "/", be.backend(1))))
		l.ClientValidation = cv
		return &ir.Snapshot{Listeners: []ir.Listener{l}}
	}
	p := startProxy(t, listener(&ir.ClientValidation{CACertPEM: good.pem}), Options{})
	addr := p.Addr("tls").String()
	get := func(cert *tls.Certificate, h2 bool) error {
		cfg := &tls.Config{ServerName: "example.org", InsecureSkipVerify: true}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: h2}
		res, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Get("https://" + addr + "/")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || h2 && res.ProtoMajor != 2 {
			t.Errorf("status %d over HTTP/%d", res.StatusCode, res.ProtoMajor)
		}
		return nil
	}
	if err := get(&goodCert, false); err != nil {
		t.Errorf("valid client certificate refused: %v", err)
	}
	if err := get(&goodCert, true); err != nil {
		t.Errorf("valid client certificate over HTTP/2 (ALPN still offered): %v", err)
	}
	if err := get(nil, false); err == nil {
		t.Error("client without a certificate served")
	}
	if err := get(&otherCert, false); err == nil {
		t.Error("client certificate of another CA served")
	}

	if err := p.Apply(listener(&ir.ClientValidation{CACertPEM: good.pem, AllowInsecureFallback: true})); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tls.Certificate{"none": nil, "other CA": &otherCert, "valid": &goodCert} {
		if err := get(c, false); err != nil {
			t.Errorf("AllowInsecureFallback, %s: %v", name, err)
		}
	}
	if err := p.Apply(listener(nil)); err != nil {
		t.Fatal(err)
	}
	if err := get(nil, true); err != nil {
		t.Errorf("check removed, client without certificate: %v", err)
	}
}
