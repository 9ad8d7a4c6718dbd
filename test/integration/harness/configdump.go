package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/false-systems/rauta/internal/ir"
)

// ServedAddress returns the address this replica binds for the Gateway
// "namespace/name", read from its /config_dump. A replica that does not
// write status reports its address nowhere else.
func (c *Controller) ServedAddress(ctx context.Context, gateway string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.AdminAddr+"/config_dump", nil)
	if err != nil {
		return "", err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("config_dump of %s: %w", c.Identity, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("config_dump of %s: %s", c.Identity, resp.Status)
	}
	var snap ir.Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&snap); err != nil {
		return "", fmt.Errorf("decode config_dump of %s: %w", c.Identity, err)
	}
	for _, l := range snap.Listeners {
		if l.Gateway == gateway {
			return l.Address, nil
		}
	}
	return "", fmt.Errorf("%s serves no listener of Gateway %s", c.Identity, gateway)
}
