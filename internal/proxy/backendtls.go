package proxy

import (
	"net/http"
	"sync"

	"github.com/false-systems/rauta/internal/router"
)

// Backends reached over TLS (BackendTLSPolicy) go through an http.Transport
// with their own tls.Config (CA pool, SNI, SAN check) compiled by the
// router. The HTTP/1.1 engine and the pooled path speak plain TCP, so they
// hand these backends to net/http (h1forward.go, pooled.go); the
// Transport's scheme is "https", so a request to such a backend can never
// leave in plain text.

// maxBackendTLSTransports bounds the Transports kept for TLS backends. One
// per distinct setting (tls key); past the bound the cache is emptied
// (idle connections closed), which only costs new handshakes.
const maxBackendTLSTransports = 256

// tlsTransports caches one Transport per backend TLS setting.
type tlsTransports struct {
	mu   sync.Mutex
	base *http.Transport
	m    map[string]*http.Transport
}

func newTLSTransports(base *http.Transport) *tlsTransports {
	return &tlsTransports{base: base, m: make(map[string]*http.Transport)}
}

// get returns the Transport for b, which must have TLS set.
func (c *tlsTransports) get(b *router.Backend) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[b.TLSKey]; ok {
		return t
	}
	if len(c.m) >= maxBackendTLSTransports {
		for k, t := range c.m {
			t.CloseIdleConnections()
			delete(c.m, k)
		}
	}
	t := c.base.Clone()
	t.TLSClientConfig = b.TLS.Clone()
	// One protocol, the one the router's ALPN offers: http/1.1, or h2
	// for gRPC and appProtocol h2 backends (router.Backend.H2).
	t.Protocols = new(http.Protocols)
	if b.H2 {
		t.Protocols.SetHTTP2(true)
		t.ForceAttemptHTTP2 = true
	} else {
		t.Protocols.SetHTTP1(true)
		t.ForceAttemptHTTP2 = false
	}
	c.m[b.TLSKey] = t
	return t
}

// close drops every cached Transport's idle connections.
func (c *tlsTransports) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.m {
		t.CloseIdleConnections()
		delete(c.m, k)
	}
}

// backendScheme is the URL scheme the Transport uses for b.
func backendScheme(b *router.Backend) string {
	if b.TLS != nil {
		return "https"
	}
	return "http"
}
