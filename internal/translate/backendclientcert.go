package translate

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// backendClientCertificate resolves spec.tls.backend.clientCertificateRef:
// a kubernetes.io/tls Secret (a ReferenceGrant for another namespace) whose
// certificate the gateway presents to backends it reaches over TLS. The
// Gateway's ResolvedRefs says whether it resolved; an unusable reference
// leaves the Gateway accepted and presents no certificate (the spec), so a
// backend that requires one refuses the handshake: 502.
func (t *translator) backendClientCertificate(gs *gatewayState) (metav1.Condition, bool) {
	gw := gs.gw
	if gw.Spec.TLS == nil || gw.Spec.TLS.Backend == nil || gw.Spec.TLS.Backend.ClientCertificateRef == nil {
		return metav1.Condition{}, false
	}
	ref := gw.Spec.TLS.Backend.ClientCertificateRef
	const field = "spec.tls.backend.clientCertificateRef"
	bad := func(reason gwv1.GatewayConditionReason, format string, args ...any) (metav1.Condition, bool) {
		return condition(string(gwv1.GatewayConditionResolvedRefs), false, string(reason), field+": "+fmt.Sprintf(format, args...), gw.Generation), true
	}
	group, kind := "", "Secret"
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	ns := gw.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if group != "" || kind != "Secret" {
		return bad(gwv1.GatewayReasonInvalidClientCertificateRef, "kind %q in group %q is not supported; use a Secret", kind, group)
	}
	from := refSource{Group: gwv1.GroupName, Kind: "Gateway", Namespace: gw.Namespace}
	if !t.ix.referenceAllowed(from, refTarget{Group: "", Kind: "Secret", Namespace: ns, Name: string(ref.Name)}) {
		return bad(gwv1.GatewayReasonRefNotPermitted, "Secret %s/%s is in another namespace and no ReferenceGrant allows it", ns, ref.Name)
	}
	secret, ok := t.ix.secrets[nsName(ns, string(ref.Name))]
	if !ok {
		return bad(gwv1.GatewayReasonInvalidClientCertificateRef, "Secret %s/%s not found", ns, ref.Name)
	}
	cert, problem := certificateFromSecret(secret)
	if problem != "" {
		return bad(gwv1.GatewayReasonInvalidClientCertificateRef, "Secret %s/%s: %s", ns, ref.Name, problem)
	}
	gs.backendClientCert = &cert
	return condition(string(gwv1.GatewayConditionResolvedRefs), true, string(gwv1.GatewayReasonResolvedRefs),
		"spec.tls.backend.clientCertificateRef: presented to backends reached over TLS", gw.Generation), true
}
