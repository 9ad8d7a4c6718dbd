// Package dpfeed feeds rauta-dataplane processes the way the controller
// does in a cluster, for benchmarks: a real config stream (configstream.
// Server over TLS with its own CA) on a loopback port, a token file, and
// the flags that point a data plane at it. The benchmark's process serves
// the stream, so its CPU and memory stay out of the data plane's numbers.
package dpfeed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
	"github.com/false-systems/rauta/internal/wellknown"
)

// serverName is the name in the stream's serving certificate.
const serverName = "controller.bench"

// Feed is one config stream on loopback with the files a data plane needs
// to reach it.
type Feed struct {
	// Gateway is the "namespace/name" the data planes ask for.
	Gateway string
	srv     *configstream.Server
	hs      *http.Server
	addr    string
	dir     string
	caFile  string
	token   string
}

// anyToken lets every token read every Gateway: the stream only talks to
// the data planes the benchmark started, on loopback.
type anyToken struct{ id configstream.Identity }

func (a anyToken) Authenticate(context.Context, string) (configstream.Identity, error) {
	return a.id, nil
}

// Start serves an empty set of Configs for gateway on a free loopback port,
// with a CA, certificate and token written to a new temp dir under dir
// ("" for the system's). Publish gives the data planes something to serve.
func Start(dir, gateway string) (*Feed, error) {
	ns, name, ok := strings.Cut(gateway, "/")
	if !ok {
		return nil, fmt.Errorf("dpfeed: gateway %q: want namespace/name", gateway)
	}
	tmp, err := os.MkdirTemp(dir, "dpfeed-")
	if err != nil {
		return nil, err
	}
	f := &Feed{Gateway: gateway, dir: tmp, caFile: filepath.Join(tmp, "ca.pem"), token: filepath.Join(tmp, "token")}
	if err := f.start(configstream.Identity{Namespace: ns, ServiceAccount: name}); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	return f, nil
}

func (f *Feed) start(id configstream.Identity) error {
	now := time.Now()
	ca, err := configstream.NewCA("bench", now)
	if err != nil {
		return err
	}
	cert, err := ca.IssueServing([]string{serverName}, nil, now)
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.caFile, ca.CertPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(f.token, []byte("bench\n"), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	f.addr = ln.Addr().String()
	f.srv = &configstream.Server{Auth: anyToken{id}, Authorize: func(configstream.Identity, string) bool { return true }}
	f.hs = &http.Server{Handler: f.srv.Handler(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}
	go func() { _ = f.hs.ServeTLS(ln, "", "") }()
	return nil
}

// Publish makes cfg the Config every data plane of the Gateway serves.
func (f *Feed) Publish(cfg configstream.Config) {
	f.srv.Publish(map[string]configstream.Config{f.Gateway: cfg})
}

// Args are the rauta-dataplane flags that connect it to this feed as pod.
func (f *Feed) Args(pod string) []string {
	return []string{"-controller", f.addr, "-controller-server-name", serverName, "-controller-ca", f.caFile,
		"-token-file", f.token, "-gateway", f.Gateway, "-pod", pod}
}

// Close stops the stream (data planes keep serving their last Config) and
// removes the files.
func (f *Feed) Close() error {
	err := f.hs.Close()
	if rerr := os.RemoveAll(f.dir); err == nil {
		err = rerr
	}
	return err
}

// FromManifests reads the manifests at path (a file or folder, as `rauta
// run -f` does) and translates them as the controller does for
// provisioned data planes: the snapshot of gateway alone, its listeners
// bound to the data plane's own address.
func FromManifests(path, gateway string) (*ir.Snapshot, error) {
	res, warnings, err := file.Load(path)
	if err != nil {
		return nil, err
	}
	if len(warnings) > 0 {
		w := warnings[0]
		return nil, fmt.Errorf("%s:%d: %s (and %d more warnings)", w.File, w.Line, w.Message, len(warnings)-1)
	}
	return Translate(res, gateway)
}

// Translate is FromManifests for resources already loaded.
func Translate(res *resources.Resources, gateway string) (*ir.Snapshot, error) {
	result := translate.Translate(res, translate.Options{ControllerName: wellknown.DefaultControllerName, Provisioned: true})
	snap := &ir.Snapshot{}
	for _, l := range result.IR.Listeners {
		if l.Gateway == gateway {
			snap.Listeners = append(snap.Listeners, l)
		}
	}
	if len(snap.Listeners) == 0 {
		return nil, fmt.Errorf("dpfeed: no listener of gateway %s in the translation", gateway)
	}
	return snap, nil
}
