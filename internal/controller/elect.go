package controller

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// elect campaigns for the status-writer Lease until ctx ends. Unlike
// controller-runtime's manager, losing the Lease does not stop the process:
// every replica keeps serving traffic, only status writing moves. onChange is
// called when this replica gains or loses the Lease.
func (c *Controller) elect(ctx context.Context, onChange func()) {
	cs, err := kubernetes.NewForConfig(c.cfg.REST)
	if err != nil {
		c.logger.Error("leader election client", "err", err)
		return
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.cfg.LeaseNamespace, Name: c.cfg.LeaseName},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.cfg.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            c.cfg.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					c.leader.Store(true)
					c.logger.Info("elected: this replica writes status", "identity", c.cfg.Identity)
					onChange()
				},
				OnStoppedLeading: func() {
					c.leader.Store(false)
					c.logger.Info("lost the status-writer lease; still serving traffic", "identity", c.cfg.Identity)
				},
			},
		})
		if err != nil {
			c.logger.Error("leader election", "err", err)
			return
		}
		le.Run(ctx) // returns when the lease is lost or ctx ends
	}
}
