package translate

import (
	"crypto/tls"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

// listenerTLS resolves the certificateRefs of an HTTPS listener. Every
// reference must resolve to a kubernetes.io/tls Secret holding a matching
// certificate and key; a cross-namespace reference needs a ReferenceGrant.
func (t *translator) listenerTLS(l *listenerState) {
	tlsCfg := l.spec.TLS
	if tlsCfg != nil && tlsCfg.Mode != nil && *tlsCfg.Mode != gwv1.TLSModeTerminate {
		l.accepted = cond{false, string(gwv1.ListenerReasonUnsupportedValue),
			fmt.Sprintf("tls.mode: %q is not allowed on an HTTPS listener; use Terminate", *tlsCfg.Mode)}
		return
	}
	if tlsCfg == nil || len(tlsCfg.CertificateRefs) == 0 {
		l.certRefs = cond{false, string(gwv1.ListenerReasonInvalidCertificateRef),
			"tls.certificateRefs: a listener that terminates TLS needs at least one certificate"}
		return
	}
	for i, ref := range tlsCfg.CertificateRefs {
		field := fmt.Sprintf("tls.certificateRefs[%d]", i)
		group := ""
		if ref.Group != nil {
			group = string(*ref.Group)
		}
		kind := "Secret"
		if ref.Kind != nil {
			kind = string(*ref.Kind)
		}
		ns := l.namespace()
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if group != "" || kind != "Secret" {
			l.certRefs = cond{false, string(gwv1.ListenerReasonInvalidCertificateRef),
				fmt.Sprintf("%s: kind %q in group %q is not supported; use a Secret", field, kind, group)}
			return
		}
		// A ListenerSet's references need grants of their own: grants
		// to its parent Gateway are not inherited.
		from := refSource{Group: gwv1.GroupName, Kind: l.ownerKind(), Namespace: l.namespace()}
		if !t.ix.referenceAllowed(from, refTarget{Group: "", Kind: "Secret", Namespace: ns, Name: string(ref.Name)}) {
			l.certRefs = cond{false, string(gwv1.ListenerReasonRefNotPermitted),
				fmt.Sprintf("%s: Secret %s/%s is in another namespace and no ReferenceGrant allows it", field, ns, ref.Name)}
			return
		}
		secret, ok := t.ix.secrets[nsName(ns, string(ref.Name))]
		if !ok {
			l.certRefs = cond{false, string(gwv1.ListenerReasonInvalidCertificateRef),
				fmt.Sprintf("%s: Secret %s/%s not found", field, ns, ref.Name)}
			return
		}
		cert, problem := certificateFromSecret(secret)
		if problem != "" {
			l.certRefs = cond{false, string(gwv1.ListenerReasonInvalidCertificateRef),
				fmt.Sprintf("%s: Secret %s/%s: %s", field, ns, ref.Name, problem)}
			return
		}
		cert.Hostnames = []string{l.hostname}
		l.certs = append(l.certs, cert)
	}
}

// certificateFromSecret checks that a Secret holds a usable certificate and
// key, and returns them.
func certificateFromSecret(s *corev1.Secret) (ir.Certificate, string) {
	if s.Type != corev1.SecretTypeTLS {
		return ir.Certificate{}, fmt.Sprintf("type is %q, want %q", s.Type, corev1.SecretTypeTLS)
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return ir.Certificate{}, "data must hold tls.crt and tls.key"
	}
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		return ir.Certificate{}, "tls.crt/tls.key: " + err.Error()
	}
	return ir.Certificate{Name: s.Namespace + "/" + s.Name, CertPEM: crt, KeyPEM: key}, ""
}
