package kube

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Campaign runs for the Lease namespace/name as identity until ctx ends,
// calling onStart when it wins the Lease and onStop when it loses it, and
// campaigning again after a loss. Unlike controller-runtime's manager,
// losing the Lease does not stop the process: only the work the Lease
// guards (status writing) moves. It returns an error only when the
// election cannot be set up.
func Campaign(ctx context.Context, client kubernetes.Interface, namespace, name, identity string, onStart, onStop func()) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) { onStart() },
				OnStoppedLeading: onStop,
			},
		})
		if err != nil {
			return err
		}
		le.Run(ctx) // returns when the lease is lost or ctx ends
	}
	return nil
}
