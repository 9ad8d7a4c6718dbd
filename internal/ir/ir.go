// Package ir is RAUTA's routing model: the plain, comparable data that sits
// between the Gateway API translator and the proxy. Nothing Kubernetes-specific
// lives here, so the proxy can be tested and benchmarked without any API types.
//
// A Snapshot is immutable once published. Slices are ordered deterministically
// by the translator (routes by Gateway API precedence), so two translations of
// the same input compare equal and an identical update can be skipped.
package ir

import "time"

// Snapshot is one complete routing configuration.
type Snapshot struct {
	// Listeners holds one entry per bound socket: a Gateway's address and port.
	// Gateway API listeners that share a port are merged into one Listener
	// with one VirtualHost each.
	Listeners []Listener `json:"listeners,omitempty"`
}

// Protocol is the application protocol a Listener speaks.
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTPS Protocol = "HTTPS"
	// ProtocolTLS is TLS passthrough: routes are chosen by the
	// ClientHello's server name and the connection's bytes relayed to a
	// backend that terminates TLS itself.
	ProtocolTLS Protocol = "TLS"
	// ProtocolTCP relays connections: the first route takes them all.
	ProtocolTCP Protocol = "TCP"
	// ProtocolUDP relays datagrams, per client address (a flow), to a
	// backend of the first route.
	ProtocolUDP Protocol = "UDP"
)

// Listener is one socket the proxy binds.
type Listener struct {
	// Name is unique within a Snapshot: "namespace/gateway/port".
	Name string `json:"name"`
	// Gateway is "namespace/name" of the Gateway that owns this socket; it is
	// the gateway label of metrics.
	Gateway string `json:"gateway"`
	// Address is the IP to bind; empty means the proxy's default address.
	Address  string   `json:"address,omitempty"`
	Port     uint32   `json:"port"`
	Protocol Protocol `json:"protocol"`
	// ClientValidation, on a listener that terminates TLS, asks clients for
	// a certificate and checks it (Gateway spec.tls.frontend).
	ClientValidation *ClientValidation `json:"clientValidation,omitempty"`
	// BackendClientCertificate, when set, is presented to backends reached
	// over TLS (Gateway spec.tls.backend.clientCertificateRef).
	BackendClientCertificate *Certificate `json:"backendClientCertificate,omitempty"`
	// Certificates are served on HTTPS listeners, chosen by SNI.
	// VirtualHosts and Routes of a TLS listener match the server name as
	// a Host; their Match is "/" and they have no filters.
	Certificates []Certificate `json:"certificates,omitempty"`
	// VirtualHosts has one entry per Gateway API listener on this port,
	// ordered most specific hostname first. A request goes to the first
	// VirtualHost whose Hostname matches its Host; there is no fall-through.
	VirtualHosts []VirtualHost `json:"virtualHosts,omitempty"`
}

// Certificate is a PEM certificate chain and key from a kubernetes.io/tls Secret.
type Certificate struct {
	// Name is "namespace/secret".
	Name string `json:"name"`
	// Hostnames are the SNI names this certificate is selected for: the
	// hostname of each listener that references it, "" for any name.
	Hostnames []string `json:"hostnames,omitempty"`
	CertPEM   []byte   `json:"-"`
	KeyPEM    []byte   `json:"-"`
}

// ClientValidation is a port's client certificate check.
type ClientValidation struct {
	// CACertPEM are the CA certificates a client certificate must chain
	// to (public material, from ConfigMaps).
	CACertPEM []byte `json:"caCertPEM"`
	// AllowInsecureFallback lets clients without a valid certificate in
	// anyway (the check is then the backend's business).
	AllowInsecureFallback bool `json:"allowInsecureFallback,omitempty"`
}

// VirtualHost is one Gateway API listener's view of a port.
type VirtualHost struct {
	// Name is "namespace/gateway/listener".
	Name string `json:"name"`
	// Hostname is the listener hostname: "", an exact name, or "*.suffix".
	Hostname string `json:"hostname,omitempty"`
	// TerminateTLS, on a TLS listener, completes the TLS handshake with
	// the listener's Certificates and relays the plaintext; otherwise the
	// connection's bytes are relayed as they are (passthrough).
	TerminateTLS bool `json:"terminateTLS,omitempty"`
	// Routes are ordered by Gateway API precedence; the first match wins.
	Routes []Route `json:"routes,omitempty"`
}

// Route is one match of one rule of one route, already in precedence order.
type Route struct {
	// Name identifies the rule for metrics and logs:
	// "kind/namespace/name/rule/N" (or the rule's name when it has one).
	// It never contains request data.
	Name string `json:"name"`
	// Hostnames are the route hostnames that apply within the VirtualHost
	// after intersection with the listener hostname; empty means any.
	Hostnames []string `json:"hostnames,omitempty"`
	Match     Match    `json:"match"`
	// Filters run in order before the request is forwarded.
	Filters []Filter `json:"filters,omitempty"`
	// Backends share traffic by Weight. A route with no backends and no
	// redirect answers 500, as the spec requires.
	Backends []Backend `json:"backends,omitempty"`
	Timeouts Timeouts  `json:"timeouts,omitempty"`
	// Retry, when set, sends a request again after a failed attempt.
	Retry *Retry `json:"retry,omitempty"`
	// Fingerprint, when set, identifies the route's content exactly: two
	// routes with the same non-empty Fingerprint are equal. The data
	// plane sets it to a 128-bit hash of the route's encoding on the
	// config stream, so that
	// a route unchanged from the previous configuration is neither decoded
	// nor compiled again. Never sent.
	Fingerprint string `json:"-"`
	// Elided marks a route of which only Fingerprint is set: the config
	// stream's decoder leaves out a route the previous configuration had,
	// so that a data plane does not keep every route decoded to serve the
	// next one; the router takes its compiled form from the previous table
	// or refuses the configuration (router.ErrUnknownRoute). Never sent.
	Elided bool `json:"-"`
}

// Retry is a rule's retry policy (HTTPRoute retry).
type Retry struct {
	// Codes are the response statuses that make an attempt failed; a
	// connection error or backend timeout always does.
	Codes []int `json:"codes,omitempty"`
	// Attempts is how many times a request is sent again at most.
	Attempts int `json:"attempts"`
	// Backoff is the least wait before a retry; later retries wait
	// longer (doubling, with jitter).
	Backoff time.Duration `json:"backoff"`
}

// PathMatchType says how a PathMatch compares.
type PathMatchType string

const (
	PathExact  PathMatchType = "Exact"
	PathPrefix PathMatchType = "PathPrefix"
	PathRegex  PathMatchType = "RegularExpression"
)

// PathMatch matches the request path.
type PathMatch struct {
	Type  PathMatchType `json:"type"`
	Value string        `json:"value"`
}

// StringMatchType says how a header or query parameter value compares.
type StringMatchType string

const (
	StringExact StringMatchType = "Exact"
	StringRegex StringMatchType = "RegularExpression"
)

// ValueMatch matches one header or query parameter by name.
type ValueMatch struct {
	Type StringMatchType `json:"type"`
	// Name is canonical for headers (case-insensitive) and exact for query params.
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Match is a conjunction: every part must hold.
type Match struct {
	Path        PathMatch    `json:"path"`
	Method      string       `json:"method,omitempty"`
	Headers     []ValueMatch `json:"headers,omitempty"`
	QueryParams []ValueMatch `json:"queryParams,omitempty"`
}

// Filter is one step of request processing. Exactly one field is set.
type Filter struct {
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	Redirect        *Redirect       `json:"redirect,omitempty"`
	Rewrite         *Rewrite        `json:"rewrite,omitempty"`
	Mirror          *Mirror         `json:"mirror,omitempty"`
	CORS            *CORS           `json:"cors,omitempty"`
}

// CORS answers cross-origin preflight requests at the gateway and adds the
// CORS response headers to the requests an allowed origin makes
// (Gateway API HTTPCORSFilter).
type CORS struct {
	// AllowOrigins are "scheme://host[:port]" with "*" standing for any
	// labels left of it in the host, or "*" alone for every origin.
	AllowOrigins []string `json:"allowOrigins,omitempty"`
	// AllowMethods, AllowHeaders and ExposeHeaders may hold "*".
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
	// MaxAge is how long, in seconds, a browser may cache a preflight
	// answer.
	MaxAge int32 `json:"maxAge,omitempty"`
}

// Header is a name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HeaderModifier sets, adds and removes headers, in that order.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// PathModifierType says how a path is rewritten.
type PathModifierType string

const (
	ReplaceFullPath    PathModifierType = "ReplaceFullPath"
	ReplacePrefixMatch PathModifierType = "ReplacePrefixMatch"
)

// PathModifier rewrites the path. For ReplacePrefixMatch the prefix replaced
// is the route's PathPrefix match value.
type PathModifier struct {
	Type  PathModifierType `json:"type"`
	Value string           `json:"value"`
}

// Redirect answers with a redirect instead of forwarding. Empty fields keep
// the request's value.
type Redirect struct {
	Scheme   string `json:"scheme,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Port is 0 to derive it from the scheme as the spec says.
	Port       uint32        `json:"port,omitempty"`
	Path       *PathModifier `json:"path,omitempty"`
	StatusCode int           `json:"statusCode"`
}

// Rewrite changes the request before forwarding.
type Rewrite struct {
	Hostname string        `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
}

// Mirror sends a copy of the request to another backend and ignores its answer.
type Mirror struct {
	Backend Backend `json:"backend"`
	// Numerator/Denominator is the share of requests mirrored; the translator
	// turns the spec's percent or fraction into it (1/1 when unset).
	Numerator   uint32 `json:"numerator"`
	Denominator uint32 `json:"denominator"`
}

// LBPolicy selects an endpoint within one Backend.
type LBPolicy string

const (
	LBRoundRobin   LBPolicy = "RoundRobin"
	LBLeastRequest LBPolicy = "LeastRequest"
	LBMaglev       LBPolicy = "Maglev"
)

// Backend is one weighted target of a route: a Service port and its endpoints.
type Backend struct {
	// Name is "namespace/service:port".
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
	// Invalid is true when the reference did not resolve (missing Service,
	// no ReferenceGrant, unsupported kind). Its share of traffic gets 500.
	Invalid bool `json:"invalid,omitempty"`
	// Endpoints are the ready endpoints; none means 503 for this backend.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	Policy    LBPolicy   `json:"policy,omitempty"`
	// HashHeader is the request header Maglev hashes; empty hashes the
	// client address.
	HashHeader string `json:"hashHeader,omitempty"`
	// AppProtocol is "" or "h2c" (speak HTTP/2 in clear text to the
	// backend; over TLS when TLS is set), "h2" (HTTP/2 over TLS) or the
	// "ws" hint, from the Service port's appProtocol or the route kind.
	AppProtocol string `json:"appProtocol,omitempty"`
	// Filters run after the route's filters for requests sent to this backend.
	Filters []Filter `json:"filters,omitempty"`
	// TLS, when set, means the gateway speaks TLS to this backend
	// (BackendTLSPolicy) and never plain text.
	TLS *BackendTLS `json:"tls,omitempty"`
}

// BackendTLS is how the gateway verifies a backend's certificate.
type BackendTLS struct {
	// ServerName is sent as SNI; without SubjectAltNames the certificate
	// must be valid for it.
	ServerName string `json:"serverName"`
	// CACertPEM are the trusted roots; empty with SystemCAs means the
	// system pool.
	CACertPEM []byte `json:"caCertPEM,omitempty"`
	SystemCAs bool   `json:"systemCAs,omitempty"`
	// SubjectAltNames, when set, replace ServerName for verification: the
	// certificate must carry one of them. A DNS name is a plain string, a
	// URI SAN has a scheme ("spiffe://...").
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
}

// Endpoint is one address a Backend forwards to.
type Endpoint struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// Weight for weighted Maglev; 0 means 1.
	Weight uint32 `json:"weight,omitempty"`
}

// Timeouts bound a request. Zero means no limit.
type Timeouts struct {
	// Request is the whole exchange as seen by the client.
	Request time.Duration `json:"request,omitempty"`
	// BackendRequest is one attempt against a backend.
	BackendRequest time.Duration `json:"backendRequest,omitempty"`
}
