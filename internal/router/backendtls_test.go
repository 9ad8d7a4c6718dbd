package router

import (
	"crypto/tls"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// TestCompileBackendTLS: TLS settings compile into a client tls.Config
// (SNI, TLS 1.2 minimum, http/1.1 ALPN, a SAN check replacing the name
// check), equal settings share a key, an h2c hint is dropped, and a CA
// bundle that does not parse fails the backend closed (Invalid).
func TestCompileBackendTLS(t *testing.T) {
	reg := lb.NewRegistry()
	ep := []ir.Endpoint{{Address: "127.0.0.1", Port: 1}}
	sys := &ir.BackendTLS{ServerName: "a.example.com", SystemCAs: true}
	b, err := compileBackend(&ir.Backend{Name: "b", Endpoints: ep, AppProtocol: "h2c", TLS: sys}, reg, filterContext{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Invalid || b.TLS == nil || b.H2C {
		t.Fatalf("invalid=%v tls=%v h2c=%v", b.Invalid, b.TLS != nil, b.H2C)
	}
	if b.TLS.ServerName != "a.example.com" || b.TLS.MinVersion != tls.VersionTLS12 || b.TLS.RootCAs != nil || b.TLS.InsecureSkipVerify {
		t.Errorf("config %+v", b.TLS)
	}
	b2, _ := compileBackend(&ir.Backend{Name: "b2", Endpoints: ep, TLS: &ir.BackendTLS{ServerName: "a.example.com", SystemCAs: true}}, reg, filterContext{})
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
