package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestCleanShutdown: a gateway that served traffic and is stopped with
// SIGTERM exits 0 (checked by stop) and logs nothing at ERROR level: an
// operator alerting on error logs must not be paged by a rollout.
func TestCleanShutdown(t *testing.T) {
	be := startBackend(t, "life")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"all.yaml": httpGateway(port) + servicesYAML(be) + routeYAML("life", nil, catchAll("life")),
	})
	c := newClient()
	if res := get(t, c, port, "life.test", "/"); res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	c.CloseIdleConnections()
	g.stop()
	sc := bufio.NewScanner(strings.NewReader(g.stderr.String()))
	for sc.Scan() {
		var line struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("stderr line is not a JSON log record: %q", sc.Text())
			continue
		}
		if line.Level == "ERROR" {
			t.Errorf("ERROR logged by a clean run and shutdown: %s", sc.Text())
		}
	}
}
