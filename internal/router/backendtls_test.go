package router

import (
	"crypto/tls"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// TestCompileBackendTLS: TLS settings compile into a client tls.Config
// (SNI, TLS 1.2 minimum, a SAN check replacing the name check), equal
// settings share a key, an h2c hint becomes HTTP/2 over TLS (ALPN h2, a key
// of its own), and a CA bundle that does not parse fails the backend
// closed (Invalid).
func TestCompileBackendTLS(t *testing.T) {
	reg := lb.NewRegistry()
	ep := []ir.Endpoint{{Address: "127.0.0.1", Port: 1}}
	sys := &ir.BackendTLS{ServerName: "a.example.com", SystemCAs: true}
	b, err := compileBackend(&ir.Backend{Name: "b", Endpoints: ep, AppProtocol: "h2c", TLS: sys}, reg, filterContext{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Invalid || b.TLS == nil || b.H2C || !b.H2 || len(b.TLS.NextProtos) != 1 || b.TLS.NextProtos[0] != "h2" {
		t.Fatalf("invalid=%v tls=%v h2c=%v h2=%v", b.Invalid, b.TLS != nil, b.H2C, b.H2)
	}
	if b.TLS.ServerName != "a.example.com" || b.TLS.MinVersion != tls.VersionTLS12 || b.TLS.RootCAs != nil || b.TLS.InsecureSkipVerify {
		t.Errorf("config %+v", b.TLS)
	}
	b2, _ := compileBackend(&ir.Backend{Name: "b2", Endpoints: ep, AppProtocol: "h2c", TLS: &ir.BackendTLS{ServerName: "a.example.com", SystemCAs: true}}, reg, filterContext{})
	h1, _ := compileBackend(&ir.Backend{Name: "h1", Endpoints: ep, TLS: &ir.BackendTLS{ServerName: "a.example.com", SystemCAs: true}}, reg, filterContext{})
	if h1.H2 || h1.TLS.NextProtos[0] != "http/1.1" || h1.TLSKey == b.TLSKey {
		t.Errorf("an HTTP/1.1 backend: h2 %v, ALPN %v, key %q (the h2 one's %q); want http/1.1 and a pool of its own", h1.H2, h1.TLS.NextProtos, h1.TLSKey, b.TLSKey)
	}
	b3, _ := compileBackend(&ir.Backend{Name: "b3", Endpoints: ep, TLS: &ir.BackendTLS{ServerName: "b.example.com", SystemCAs: true}}, reg, filterContext{})
	if b.TLSKey != b2.TLSKey || b.TLSKey == b3.TLSKey {
		t.Errorf("keys %q %q %q: equal settings must share, different must not", b.TLSKey, b2.TLSKey, b3.TLSKey)
	}
	san, _ := compileBackend(&ir.Backend{Name: "s", Endpoints: ep, TLS: &ir.BackendTLS{ServerName: "a.example.com", SystemCAs: true, SubjectAltNames: []string{"x.example.com"}}}, reg, filterContext{})
	if !san.TLS.InsecureSkipVerify || san.TLS.VerifyConnection == nil {
		t.Error("subjectAltNames must replace Go's name check by VerifyConnection")
	}
	bad, err := compileBackend(&ir.Backend{Name: "bad", Endpoints: ep, TLS: &ir.BackendTLS{ServerName: "a", CACertPEM: []byte("not pem")}}, reg, filterContext{})
	if err != nil || !bad.Invalid || bad.TLS != nil {
		t.Errorf("bad bundle: err=%v invalid=%v", err, bad.Invalid)
	}
	m, err := compileMirror(&ir.Mirror{Numerator: 1, Denominator: 1, Backend: ir.Backend{Name: "m", Endpoints: ep, TLS: sys}}, filterContext{reg: reg})
	if err != nil || m.Backend.TLS == nil || m.Backend.TLS.ServerName != "a.example.com" {
		t.Errorf("mirror backend lost its TLS settings (err=%v): it would get plain text", err)
	}
}
