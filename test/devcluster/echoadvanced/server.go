package echoadvanced

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// ServerConfig holds the server's flags, named as Istio's echo server names them.
type ServerConfig struct {
	HTTPPorts []int // --port, default 8080
	GRPCPorts []int // --grpc, default 7070 (served as HTTP echo with h2c, see the package doc)
	TCPPorts  []int // --tcp, default 9090
	TLSPorts  []int // --tls: which of the ports above use TLS
	Cert, Key string
	Version   string // --version: ServiceVersion
	Cluster   string // --cluster
	Namespace string // --namespace
	// Hostname is reported as Hostname: the pod name. Default $HOSTNAME (the node agent and
	// the kubelet set it to the pod name), else os.Hostname.
	Hostname string

	// MaxTCPConns bounds the TCP echo's concurrent connections, default 1024.
	MaxTCPConns int
	// TCPIdleTimeout closes a TCP echo connection without data for this long, default 60s.
	TCPIdleTimeout time.Duration
}

// Limits of the HTTP servers.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxBodyEcho       = 1 << 20 // the request body is read (and dropped) up to this much
	tcpReadBuffer     = 4096
)

// Serve listens on every configured port and serves until ctx ends. ready, when not nil,
// is called once every listener is open.
func Serve(ctx context.Context, cfg ServerConfig, ready func()) error {
	if cfg.Hostname == "" {
		cfg.Hostname = os.Getenv("HOSTNAME")
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.MaxTCPConns <= 0 {
		cfg.MaxTCPConns = 1024
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = 60 * time.Second
	}
	var tlsCfg *tls.Config
	if len(cfg.TLSPorts) > 0 {
		cert, err := loadOrMakeCert(cfg.Cert, cfg.Key, cfg.Hostname)
		if err != nil {
			return err
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	}

	var (
		servers   []*http.Server
		listeners []net.Listener
		tcpLns    []net.Listener
	)
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
		for _, l := range tcpLns {
			l.Close()
		}
	}
	listen := func(port int) (net.Listener, error) {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			return nil, fmt.Errorf("listen on %d: %w", port, err)
		}
		if slices.Contains(cfg.TLSPorts, port) {
			l = tls.NewListener(l, tlsCfg)
		}
		return l, nil
	}
	for _, port := range slices.Concat(cfg.HTTPPorts, cfg.GRPCPorts) {
		l, err := listen(port)
		if err != nil {
			closeAll()
			return err
		}
		h := &handler{cfg: &cfg, port: port}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout}
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		if slices.Contains(cfg.TLSPorts, port) {
			srv.TLSConfig = tlsCfg
		}
		servers = append(servers, srv)
		listeners = append(listeners, l)
	}
	for _, port := range cfg.TCPPorts {
		l, err := listen(port)
		if err != nil {
			closeAll()
			return err
		}
		tcpLns = append(tcpLns, l)
	}
	if ready != nil {
		ready()
	}

	errc := make(chan error, len(servers)+len(tcpLns))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() {
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	slots := make(chan struct{}, cfg.MaxTCPConns)
	for i, l := range tcpLns {
		port := cfg.TCPPorts[i]
		wg.Go(func() { errc <- serveTCP(l, &cfg, port, slots, &wg) })
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, srv := range servers {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(shutdownCtx)
		cancel()
	}
	for _, l := range tcpLns {
		l.Close()
	}
	wg.Wait()
	return err
}

// handler answers every request with Istio's echo body.
type handler struct {
	cfg  *ServerConfig
	port int
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBodyEcho))
	var body bytes.Buffer
	status := http.StatusOK
	writeField(&body, FieldStatusCode, strconv.Itoa(status))
	writeField(&body, FieldServiceVersion, h.cfg.Version)
	writeField(&body, FieldServicePort, strconv.Itoa(h.port))
	writeField(&body, FieldHost, r.Host)
	// The raw request URI: the tests check rewrites, so nothing may normalise it.
	writeField(&body, FieldURL, r.RequestURI)
	if h.cfg.Cluster != "" {
		writeField(&body, FieldCluster, h.cfg.Cluster)
	}
	if h.cfg.Namespace != "" {
		writeField(&body, FieldNamespace, h.cfg.Namespace)
	}
	writeField(&body, FieldMethod, r.Method)
	writeField(&body, FieldProto, r.Proto)
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	writeField(&body, FieldIP, ip)
	if r.TLS != nil && r.TLS.NegotiatedProtocol != "" {
		writeField(&body, FieldAlpn, r.TLS.NegotiatedProtocol)
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			writeField(&body, FieldRequestHeader, k+":"+v)
		}
	}
	writeField(&body, FieldHostname, h.cfg.Hostname)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

// serveTCP echoes what a client sends, preceded once by the server's fields (Istio's TCP
// echo). At most cap(slots) connections at once; more are closed at accept.
func serveTCP(l net.Listener, cfg *ServerConfig, port int, slots chan struct{}, wg *sync.WaitGroup) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			conn.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			defer conn.Close()
			echoTCP(conn, cfg, port)
		})
	}
}

func echoTCP(conn net.Conn, cfg *ServerConfig, port int) {
	buf := make([]byte, tcpReadBuffer)
	first := true
	for {
		_ = conn.SetReadDeadline(time.Now().Add(cfg.TCPIdleTimeout))
		n, err := conn.Read(buf)
		if n > 0 {
			var out bytes.Buffer
			if first {
				first = false
				writeField(&out, FieldServiceVersion, cfg.Version)
				writeField(&out, FieldServicePort, strconv.Itoa(port))
				ip, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
				writeField(&out, FieldIP, ip)
				writeField(&out, FieldHostname, cfg.Hostname)
			}
			out.Write(buf[:n])
			if _, werr := conn.Write(out.Bytes()); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// loadOrMakeCert reads the key pair; when the files do not exist (Istio's image ships
// test certificates at /cert.crt and /cert.key, this stand-in does not) it makes a
// self-signed one for the pod's name.
func loadOrMakeCert(certFile, keyFile, hostname string) (tls.Certificate, error) {
	if certFile != "" && keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err == nil {
			return cert, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return tls.Certificate{}, fmt.Errorf("TLS key pair %s, %s: %w", certFile, keyFile, err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hostname},
		DNSNames:     []string{hostname, "localhost"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
