package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/false-systems/rauta/internal/ir"
)

// clientAuth is a listener's client certificate check (Gateway
// spec.tls.frontend), compiled: the CA pool and how strictly it is applied.
type clientAuth struct {
	pool *x509.CertPool
	mode tls.ClientAuthType
}

// compileClientAuth returns nil when the listener checks no client
// certificates.
func compileClientAuth(cv *ir.ClientValidation) (*clientAuth, error) {
	if cv == nil {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cv.CACertPEM) {
		return nil, errors.New("client validation: no CA certificate in the bundle")
	}
	// AllowValidOnly: no connection without a certificate that chains to
	// the CAs. AllowInsecureFallback: a certificate is asked for but
	// neither required nor verified, as the spec defines the mode (the
	// backend decides).
	mode := tls.RequireAndVerifyClientCert
	if cv.AllowInsecureFallback {
		mode = tls.RequestClientCert
	}
	return &clientAuth{pool: pool, mode: mode}, nil
}

// withClientAuth returns the handshake config for a listener's current
// client check: base when it has none, else a copy of base that asks for
// and checks client certificates. It serves as GetConfigForClient, so
// Apply changes the check without reopening the socket.
func withClientAuth(base *tls.Config, ca *clientAuth) *tls.Config {
	if ca == nil {
		return nil // crypto/tls keeps base
	}
	c := base.Clone()
	c.GetConfigForClient = nil
	c.ClientCAs = ca.pool
	c.ClientAuth = ca.mode
	return c
}
