package e2e

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// TestAdminNeverShowsKeyMaterial configures an HTTPS listener the way a
// user does (a kubernetes.io/tls Secret in the manifests `rauta run`
// reads), with a canary in the Secret besides the key, checks the key is
// in use, and then fetches every admin endpoint: none may contain the
// private key in any encoding a dump could produce (PEM, its base64 as
// JSON writes []byte, the raw scalar), a PEM private-key block at all, or
// the Secret's other data. Issue 14 finding 8: no key material leaks
// today; this keeps it that way.
func TestAdminNeverShowsKeyMaterial(t *testing.T) {
	be := startBackend(t, "canary")
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, 42, "canary.test")
	canary := "rauta-canary-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml": gatewayYAML("gw", listenerSpec{name: "https", port: port, protocol: "HTTPS", hostname: "canary.test", certs: []string{"canary-cert"}}),
		"secret.yaml": secretYAML("canary-cert", certPEM, keyPEM) +
			"  canary: " + base64.StdEncoding.EncodeToString([]byte(canary)) + "\n",
		"backends.yaml": servicesYAML(be),
		"routes.yaml":   routeYAML("all", nil, catchAll("canary")),
	})

	// The key is the one serving: the canary went through the real path.
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "canary.test"},
	}}
	poll.Require(t, 10*time.Second, "an HTTPS answer with the canary certificate", func() bool {
		req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(port)+"/", nil)
		if err != nil {
			return false
		}
		req.Host = "canary.test"
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 &&
			resp.TLS.PeerCertificates[0].SerialNumber.Int64() == 42
	})

	secrets := secretForms(t, keyPEM, canary)
	for _, path := range []string{"/config_dump", "/status", "/metrics", "/healthz", "/readyz", "/debug/pprof/cmdline"} {
		status, body := g.adminGet(path)
		for name, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s (status %d) shows the %s", path, status, name)
			}
		}
		if path == "/config_dump" && (status != http.StatusOK || !strings.Contains(body, "canary.test")) {
			// Else the check above proves nothing: the dump must show
			// the listener whose key it must not show.
			t.Errorf("GET /config_dump: status %d, no listener for canary.test in %.300s", status, body)
		}
	}
}

// secretForms are the strings a leak would show, by name.
func secretForms(t *testing.T, keyPEM []byte, canary string) map[string]string {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := k.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	body := base64.StdEncoding.EncodeToString(block.Bytes)
	forms := map[string]string{
		"PEM private-key block":                 "PRIVATE KEY-----",
		"private key's PEM body":                body[len(body)-40:], // the scalar's part, past the fixed header
		"private key PEM as JSON []byte":        base64.StdEncoding.EncodeToString(keyPEM)[:40],
		"private key as JSON []byte of its DER": base64.StdEncoding.EncodeToString(block.Bytes)[20:60],
		"private scalar in hex":                 hex.EncodeToString(scalar),
		"private scalar in base64":              base64.StdEncoding.EncodeToString(scalar),
		"Secret's other data":                   canary,
		"Secret's other data as JSON []byte":    base64.StdEncoding.EncodeToString([]byte(canary)),
	}
	return forms
}
