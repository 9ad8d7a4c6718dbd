package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"

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

// withClientAuth returns a copy of base that asks for and checks client
// certificates as ca says.
func withClientAuth(base *tls.Config, ca *clientAuth) *tls.Config {
	c := base.Clone()
	c.GetConfigForClient = nil
	c.ClientCAs = ca.pool
	c.ClientAuth = ca.mode
	return c
}

// clientAuthConfigs serves a socket's GetConfigForClient: the handshake
// config of the listener's current client check, built once per check
// (that is, per Apply that compiles one) and shared by every handshake
// after, not copied per handshake. crypto/tls takes the session ticket
// keys from the socket's own config, so tickets outlive a change of check.
type clientAuthConfigs struct {
	base *tls.Config
	last atomic.Pointer[clientAuthConfig]
}

type clientAuthConfig struct {
	ca  *clientAuth
	cfg *tls.Config
}

func newClientAuthConfigs(base *tls.Config) *clientAuthConfigs {
	return &clientAuthConfigs{base: base.Clone()}
}

// get returns the config for ca, nil (crypto/tls keeps the socket's) for none.
func (c *clientAuthConfigs) get(ca *clientAuth) *tls.Config {
	if ca == nil {
		return nil
	}
	if e := c.last.Load(); e != nil && e.ca == ca {
		return e.cfg
	}
	e := &clientAuthConfig{ca: ca, cfg: withClientAuth(c.base, ca)}
	c.last.Store(e)
	return e.cfg
}
