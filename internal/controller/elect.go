package controller

import (
	"context"

	"k8s.io/client-go/kubernetes"

	"github.com/false-systems/rauta/internal/provider/kube"
)

// elect campaigns for the status-writer Lease until ctx ends. Losing the
// Lease does not stop the process: every replica keeps serving traffic,
// only status writing moves. onChange is called when this replica gains
// the Lease.
func (c *Controller) elect(ctx context.Context, onChange func()) {
	cs, err := kubernetes.NewForConfig(c.cfg.REST)
	if err != nil {
		c.logger.Error("leader election client", "err", err)
		return
	}
	err = kube.Campaign(ctx, cs, c.cfg.LeaseNamespace, c.cfg.LeaseName, c.cfg.Identity,
		func() {
			c.leader.Store(true)
			c.logger.Info("elected: this replica writes status", "identity", c.cfg.Identity)
			onChange()
		},
		func() {
			c.leader.Store(false)
			c.logger.Info("lost the status-writer lease; still serving traffic", "identity", c.cfg.Identity)
		})
	if err != nil {
		c.logger.Error("leader election", "err", err)
	}
}
