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
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// testCA is a throwaway CA for backend certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a server certificate for dnsNames and uris.
func (ca *testCA) leaf(t *testing.T, dnsNames []string, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "backend"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dnsNames, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// httpsBackend is an HTTPS server that counts the requests its handler saw
// and records the SNI they came with.
type httpsBackend struct {
	srv  *httptest.Server
	hits atomic.Int64
	sni  atomic.Value
}

func newHTTPSBackend(t *testing.T, cert tls.Certificate) *httpsBackend {
	t.Helper()
	b := &httpsBackend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if r.TLS != nil {
			b.sni.Store(r.TLS.ServerName)
		}
		w.Header().Set("X-Backend-TLS", r.Proto)
		w.Write([]byte("secure " + r.URL.Path))
	}))
	b.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	return b
}

func tlsIRBackend(t *testing.T, addr string, cfg *ir.BackendTLS) ir.Backend {
	return ir.Backend{Name: "default/secure:443", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, addr)}, TLS: cfg}
}

// TestBackendTLS: a backend with TLS settings is reached over TLS with the
// policy's SNI, on the HTTP/1.1 engine, the net/http path (h2c client,
// pooled path otherwise) and with a request body; a certificate that does
// not verify (wrong CA, wrong name, plain-text server) gives 502 and the
// backend's handler never sees the request.
func TestBackendTLS(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	good := newHTTPSBackend(t, ca.leaf(t, []string{"backend.example.com"}, "spiffe://cluster.local/ns/default/sa/backend"))
	untrusted := newHTTPSBackend(t, other.leaf(t, []string{"backend.example.com"}))
	plain := newEchoBackend(t, "plain")
	goodAddr := good.srv.Listener.Addr().String()

	routes := []ir.Route{
		prefixRoute("ok", "/ok", tlsIRBackend(t, goodAddr, &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem})),
		prefixRoute("wrong-ca", "/wrong-ca", tlsIRBackend(t, untrusted.srv.Listener.Addr().String(), &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem})),
		prefixRoute("wrong-name", "/wrong-name", tlsIRBackend(t, goodAddr, &ir.BackendTLS{ServerName: "other.example.com", CACertPEM: ca.pem})),
		prefixRoute("plain", "/plain", tlsIRBackend(t, plain.srv.Listener.Addr().String(), &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem})),
		prefixRoute("san-uri", "/san-uri", tlsIRBackend(t, goodAddr, &ir.BackendTLS{ServerName: "other.example.com", CACertPEM: ca.pem,
			SubjectAltNames: []string{"spiffe://cluster.local/ns/default/sa/backend"}})),
		prefixRoute("san-dns", "/san-dns", tlsIRBackend(t, goodAddr, &ir.BackendTLS{ServerName: "other.example.com", CACertPEM: ca.pem,
			SubjectAltNames: []string{"nomatch.example.com", "backend.example.com"}})),
		prefixRoute("san-miss", "/san-miss", tlsIRBackend(t, goodAddr, &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem,
			SubjectAltNames: []string{"nomatch.example.com", "spiffe://cluster.local/ns/default/sa/other"}})),
		prefixRoute("san-untrusted", "/san-untrusted", tlsIRBackend(t, untrusted.srv.Listener.Addr().String(), &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem,
			SubjectAltNames: []string{"backend.example.com"}})),
	}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(routes...))}}, Options{})
	base := p.url(t, "l")

	clients := map[string]*http.Client{"http1-engine": newClient(), "h2c-nethttp": h2cClient()}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				path   string
				method string
				status int
			}{
				{"/ok", "GET", 200},
				{"/ok/post", "POST", 200},
				{"/san-uri", "GET", 200},
				{"/san-dns", "GET", 200},
				{"/wrong-ca", "GET", 502},
				{"/wrong-name", "GET", 502},
				{"/plain", "GET", 502},
				{"/san-miss", "GET", 502},
				{"/san-untrusted", "GET", 502},
			} {
				var body *strings.Reader
				if tc.method == "POST" {
					body = strings.NewReader(strings.Repeat("x", 100<<10))
				} else {
					body = strings.NewReader("")
				}
				resp, _, text := do(t, c, mustReq(t, tc.method, base+tc.path, body))
				if resp.StatusCode != tc.status {
					t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.path, resp.StatusCode, tc.status, text)
				}
				if tc.status == 200 && text != "secure "+tc.path {
					t.Errorf("%s %s: body %q", tc.method, tc.path, text)
				}
			}
		})
	}
	if got := good.sni.Load(); got != "backend.example.com" && got != "other.example.com" {
		t.Errorf("backend saw SNI %v", got)
	}
	if n := untrusted.hits.Load(); n != 0 {
		t.Errorf("untrusted backend's handler saw %d requests; the handshake must fail first", n)
	}
	plain.mu.Lock()
	n := len(plain.seen)
	plain.mu.Unlock()
	if n != 0 {
		t.Errorf("plain-text backend saw %d requests; a TLS backend must never get plain text", n)
	}
	// 4 successes per client on the good backend, nothing else: the
	// wrong-name and san-miss requests fail in the handshake.
	if n := good.hits.Load(); n != 8 {
		t.Errorf("good backend handled %d requests, want 8", n)
	}
}

// TestBackendTLSSNI: the policy's hostname is the SNI the backend sees.
func TestBackendTLSSNI(t *testing.T) {
	ca := newTestCA(t)
	good := newHTTPSBackend(t, ca.leaf(t, []string{"*.example.com"}))
	route := prefixRoute("ok", "/", tlsIRBackend(t, good.srv.Listener.Addr().String(), &ir.BackendTLS{ServerName: "abc.example.com", CACertPEM: ca.pem}))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(route))}}, Options{})
	resp, _, text := do(t, newClient(), mustReq(t, "GET", p.url(t, "l")+"/x", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d (%s)", resp.StatusCode, text)
	}
	if got := good.sni.Load(); got != "abc.example.com" {
		t.Errorf("SNI %v, want abc.example.com", got)
	}
}

// TestBackendTLSClientCertificate: a listener's backend client certificate
// (Gateway spec.tls.backend) is presented to a TLS backend that requires
// one; without it the handshake fails: 502, the handler never reached.
func TestBackendTLSClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	clientCA := newTestCA(t)
	srv := newHTTPSBackend(t, ca.leaf(t, []string{"backend.example.com"}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	// Restart with client authentication required.
	srv.srv.Close()
	var peer atomic.Value
	srv.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.hits.Add(1)
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		w.Write([]byte("ok"))
	}))
	srv.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, []string{"backend.example.com"})}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.srv.StartTLS()
	t.Cleanup(srv.srv.Close)

	client := clientCA.leaf(t, []string{"gateway.example.com"})
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cc := &ir.Certificate{Name: "default/client",
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Certificate[0]}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	be := tlsIRBackend(t, srv.srv.Listener.Addr().String(), &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem})
	with := httpListener("with", catchAll(prefixRoute("r", "/", be)))
	with.BackendClientCertificate = cc
	without := httpListener("without", catchAll(prefixRoute("r", "/", be)))
	without.Port = 0
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{with}}, Options{})
	for _, c := range []*http.Client{newClient(), h2cClient()} {
		if resp, _, text := do(t, c, mustReq(t, "GET", p.url(t, "with")+"/x", nil)); resp.StatusCode != 200 {
			t.Fatalf("with client certificate: status %d (%s)", resp.StatusCode, text)
		}
	}
	if got := peer.Load(); got != "backend" {
		t.Errorf("backend saw client certificate CN %v", got)
	}
	q := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{without}}, Options{})
	before := srv.hits.Load()
	if resp, _, text := do(t, newClient(), mustReq(t, "GET", q.url(t, "without")+"/x", nil)); resp.StatusCode != 502 {
		t.Errorf("without client certificate: status %d, want 502 (%s)", resp.StatusCode, text)
	}
	if srv.hits.Load() != before {
		t.Error("the backend's handler saw a request without a client certificate")
	}
}

// TestBackendTLSMirror: a mirror to a TLS backend is sent over TLS, and a
// mirror whose TLS target is a plain-text server never reaches its handler.
func TestBackendTLSMirror(t *testing.T) {
	ca := newTestCA(t)
	good := newHTTPSBackend(t, ca.leaf(t, []string{"backend.example.com"}))
	plain := newEchoBackend(t, "plain")
	primary := newEchoBackend(t, "primary")
	cfg := &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem}
	toTLS := prefixRoute("tls", "/tls", primary.backend(1))
	toTLS.Filters = []ir.Filter{{Mirror: &ir.Mirror{Backend: tlsIRBackend(t, good.srv.Listener.Addr().String(), cfg), Numerator: 1, Denominator: 1}}}
	toPlain := prefixRoute("plain", "/plain", primary.backend(1))
	toPlain.Filters = []ir.Filter{{Mirror: &ir.Mirror{Backend: tlsIRBackend(t, plain.srv.Listener.Addr().String(), cfg), Numerator: 1, Denominator: 1}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(toTLS, toPlain))}}, Options{})
	for _, path := range []string{"/tls", "/plain"} {
		if resp, _, text := do(t, newClient(), mustReq(t, "GET", p.url(t, "l")+path, nil)); resp.StatusCode != 200 {
			t.Fatalf("%s: status %d (%s)", path, resp.StatusCode, text)
		}
	}
	// Mirrors are sent in the background: wait for the TLS one (bounded).
	for deadline := time.Now().Add(5 * time.Second); good.hits.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := good.hits.Load(); n != 1 {
		t.Errorf("TLS mirror backend saw %d requests, want 1", n)
	}
	if got := good.sni.Load(); got != "backend.example.com" {
		t.Errorf("mirror SNI %v", got)
	}
	plain.mu.Lock()
	n := len(plain.seen)
	plain.mu.Unlock()
	if n != 0 {
		t.Errorf("plain-text server behind a TLS mirror saw %d requests", n)
	}
}

// TestBackendTLSHTTP2: a gRPC-style backend (appProtocol h2c, or h2) behind
// a BackendTLSPolicy is reached over TLS with ALPN h2 and HTTP/2, not
// HTTP/1.1 (which a gRPC server refuses); a plain backend stays on
// HTTP/1.1.
func TestBackendTLSHTTP2(t *testing.T) {
	ca := newTestCA(t)
	h2srv := newHTTPSBackend(t, ca.leaf(t, []string{"backend.example.com"}))
	h2srv.srv.Close()
	h2srv.srv = httptest.NewUnstartedServer(h2srv.srv.Config.Handler)
	h2srv.srv.EnableHTTP2 = true
	h2srv.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, []string{"backend.example.com"})}}
	h2srv.srv.StartTLS()
	t.Cleanup(h2srv.srv.Close)
	addr := h2srv.srv.Listener.Addr().String()
	policy := &ir.BackendTLS{ServerName: "backend.example.com", CACertPEM: ca.pem}
	backend := func(app string) ir.Backend {
		b := tlsIRBackend(t, addr, policy)
		b.AppProtocol = app
		return b
	}
	routes := []ir.Route{
		prefixRoute("grpc", "/grpc", backend("h2c")),
		prefixRoute("h2", "/h2", backend("h2")),
		prefixRoute("plain", "/plain", backend("")),
	}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(routes...))}}, Options{})
	for name, c := range map[string]*http.Client{"http1-engine": newClient(), "h2c-nethttp": h2cClient()} {
		for path, want := range map[string]string{"/grpc": "HTTP/2.0", "/h2": "HTTP/2.0", "/plain": "HTTP/1.1"} {
			resp, _, text := do(t, c, mustReq(t, "GET", p.url(t, "l")+path, nil))
			if resp.StatusCode != 200 || resp.Header.Get("X-Backend-TLS") != want {
				t.Errorf("%s %s: %d %q, backend saw %q; want 200 over %s", name, path, resp.StatusCode, text, resp.Header.Get("X-Backend-TLS"), want)
			}
		}
	}
}
