package svcproxy

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fieldManager names the proxy in the Service's managedFields.
const fieldManager = "rauta-devcluster-svcproxy"

// writeIngress sets status.loadBalancer.ingress when it differs. The Service from the
// informer's cache is copied, never changed. A conflict is returned, so the key is synced
// again with the newer object.
func (p *Proxy) writeIngress(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress) error {
	if equality.Semantic.DeepEqual(svc.Status.LoadBalancer.Ingress, ingress) {
		return nil
	}
	cp := svc.DeepCopy()
	cp.Status.LoadBalancer.Ingress = ingress
	if _, err := p.cs.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("write load-balancer status of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}
