package proxy

import (
	"net/http"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func TestSmoke(t *testing.T) {
	be := newEchoBackend(t, "a")
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l1", catchAll(prefixRoute("r1", "/", be.backend(1))))}}
	p := startProxy(t, snap, Options{})
	resp, e, body := do(t, newClient(), mustReq(t, "GET", p.url(t, "l1")+"/x?y=1", nil))
	if resp.StatusCode != http.StatusOK || e.URI != "/x?y=1" {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	t.Logf("%+v", e)
}
