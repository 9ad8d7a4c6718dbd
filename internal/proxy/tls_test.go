package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// testCert is a self-signed certificate generated for one test.
type testCert struct {
	ir   ir.Certificate
	x509 *x509.Certificate
}

func newTestCert(t testing.TB, name string, dnsNames []string, hostnames ...string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     dnsNames,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCert{
		ir: ir.Certificate{
			Name:      "default/" + name,
			Hostnames: hostnames,
			CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		},
		x509: cert,
	}
}

func httpsListener(name string, certs []ir.Certificate, vhosts ...ir.VirtualHost) ir.Listener {
	l := httpListener(name, vhosts...)
	l.Protocol = ir.ProtocolHTTPS
	l.Certificates = certs
	return l
}

// handshake connects with TLS and SNI and returns the served certificate
// and the negotiated protocol.
func handshake(t *testing.T, addr, sni string, alpn ...string) (*x509.Certificate, string) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: sni, InsecureSkipVerify: true, NextProtos: alpn,
	})
	if err != nil {
		t.Fatalf("handshake with SNI %q: %v", sni, err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0], st.NegotiatedProtocol
}

func TestTLSSNISelection(t *testing.T) {
	be := newEchoBackend(t, "a")
	exact := newTestCert(t, "exact", []string{"www.example.com"}, "www.example.com")
	wild := newTestCert(t, "wild", []string{"*.example.com"}, "*.example.com")
	deep := newTestCert(t, "deep", []string{"*.api.example.com"}, "*.api.example.com")
	def := newTestCert(t, "default", []string{"fallback"}, "")
	l := httpsListener("tls", []ir.Certificate{exact.ir, wild.ir, deep.ir, def.ir}, catchAll(prefixRoute("r", "/", be.backend(1))))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	addr := p.Addr("tls").String()
	for sni, want := range map[string]string{
		"www.example.com":    "exact",
		"WWW.Example.com":    "exact",
		"shop.example.com":   "wild",
		"a.b.example.com":    "wild",
		"v1.api.example.com": "deep",
		"example.com":        "default",
		"other.org":          "default",
		"":                   "default",
	} {
		if got, _ := handshake(t, addr, sni); got.Subject.CommonName != want {
			t.Errorf("SNI %q got certificate %q, want %q", sni, got.Subject.CommonName, want)
		}
	}
}

func TestTLSHTTP2ByALPN(t *testing.T) {
	be := newEchoBackend(t, "a")
	c := newTestCert(t, "c", []string{"app.example.com"}, "")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{c.ir}, catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{})
	pool := x509.NewCertPool()
	pool.AddCert(c.x509)
	addr := p.Addr("tls").String()
	for _, tc := range []struct {
		h2        bool
		wantProto string
	}{{true, "HTTP/2.0"}, {false, "HTTP/1.1"}} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "app.example.com"},
			ForceAttemptHTTP2: tc.h2,
		}
		if !tc.h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		resp, e, _ := do(t, cl, mustReq(t, "GET", "https://"+addr+"/x", nil))
		if resp.StatusCode != 200 || resp.Proto != tc.wantProto {
			t.Errorf("h2=%v: status %d proto %s, want %s", tc.h2, resp.StatusCode, resp.Proto, tc.wantProto)
		}
		if got := http.Header(e.Header).Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto %q, want https", got)
		}
		tr.CloseIdleConnections()
	}
}

func TestTLSCertificateHotReload(t *testing.T) {
	be := newEchoBackend(t, "a")
	first := newTestCert(t, "first", []string{"app.example.com"}, "app.example.com")
	second := newTestCert(t, "second", []string{"app.example.com"}, "app.example.com")
	snap := func(c testCert) *ir.Snapshot {
		return &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{c.ir}, catchAll(prefixRoute("r", "/", be.backend(1))))}}
	}
	p := startProxy(t, snap(first), Options{})
	addr := p.Addr("tls").String()
	if got, _ := handshake(t, addr, "app.example.com"); got.Subject.CommonName != "first" {
		t.Fatalf("served %q before reload", got.Subject.CommonName)
	}
	if err := p.Apply(snap(second)); err != nil {
		t.Fatal(err)
	}
	if now := p.Addr("tls").String(); now != addr {
		t.Fatalf("certificate change reopened the socket: %s -> %s", addr, now)
	}
	if got, _ := handshake(t, addr, "app.example.com"); got.Subject.CommonName != "second" {
		t.Errorf("served %q after reload, want second", got.Subject.CommonName)
	}
}

func TestTLSBadCertificateRejected(t *testing.T) {
	good := newTestCert(t, "good", []string{"a"}, "")
	bad := good.ir
	bad.Name = "default/broken"
	bad.KeyPEM = []byte("not a key")
	s, err := New(Options{DefaultAddress: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(&ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{bad})}})
	if err == nil || !contains(err.Error(), `listener "tls"`, `certificate "default/broken"`) {
		t.Fatalf("Apply with a broken key: %v", err)
	}
}
