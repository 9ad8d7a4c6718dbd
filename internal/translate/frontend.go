package translate

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

// Client certificate validation (Gateway spec.tls.frontend): the CA
// bundles of the port's validation config are resolved for every listener
// that terminates TLS on that port, and the data plane asks clients for a
// certificate signed by them.

// frontendValidation returns the client certificate validation that applies
// to listeners on port, as spec.tls.frontend defines it: the per-port entry
// when there is one (even without validation), else the default.
func frontendValidation(gw *gwv1.Gateway, port gwv1.PortNumber) (*gwv1.FrontendTLSValidation, string) {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil, ""
	}
	f := gw.Spec.TLS.Frontend
	for i, pp := range f.PerPort {
		if pp.Port == port {
			return pp.TLS.Validation, fmt.Sprintf("spec.tls.frontend.perPort[%d].tls.validation", i)
		}
	}
	return f.Default.Validation, "spec.tls.frontend.default.validation"
}

// insecureFrontendValidation reports a listener whose client check lets
// every client in (AllowInsecureFallback): the spec asks for the Gateway
// condition InsecureFrontendValidationMode so that nobody misses it.
func insecureFrontendValidation(ls []*listenerState) bool {
	for _, l := range ls {
		if l.clientValidation != nil && l.clientValidation.AllowInsecureFallback {
			return true
		}
	}
	return false
}

// caConfigMapKey is where a CA bundle ConfigMap holds its certificates.
const caConfigMapKey = "ca.crt"

// listenerClientValidation resolves the CA certificates a listener that
// terminates TLS validates clients with. An unusable reference makes the
// listener ResolvedRefs=False with the spec's reason; when no reference is
// usable the listener is not accepted (NoValidCACertificate), since serving
// it without the check would let in clients the user meant to keep out.
func (t *translator) listenerClientValidation(l *listenerState) {
	if l.spec.Protocol != gwv1.HTTPSProtocolType && !terminatesTLS(l.spec) || !l.accepted.ok {
		return
	}
	v, field := frontendValidation(l.gw.gw, l.spec.Port)
	if v == nil {
		return
	}
	gw := l.gw.gw
	var bundle []byte
	for i, ref := range v.CACertificateRefs {
		f := fmt.Sprintf("%s.caCertificateRefs[%d]", field, i)
		ns := gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if ref.Group != "" || ref.Kind != "ConfigMap" {
			l.caRefs = cond{false, string(gwv1.ListenerReasonInvalidCACertificateKind),
				fmt.Sprintf("%s: kind %q in group %q is not supported; use a ConfigMap with %s", f, ref.Kind, ref.Group, caConfigMapKey)}
			continue
		}
		from := refSource{Group: gwv1.GroupName, Kind: "Gateway", Namespace: gw.Namespace}
		if !t.ix.referenceAllowed(from, refTarget{Group: "", Kind: "ConfigMap", Namespace: ns, Name: string(ref.Name)}) {
			l.caRefs = cond{false, string(gwv1.ListenerReasonRefNotPermitted),
				fmt.Sprintf("%s: ConfigMap %s/%s is in another namespace and no ReferenceGrant allows it", f, ns, ref.Name)}
			continue
		}
		cm, ok := t.ix.configMaps[nsName(ns, string(ref.Name))]
		if !ok {
			l.caRefs = cond{false, string(gwv1.ListenerReasonInvalidCACertificateRef),
				fmt.Sprintf("%s: ConfigMap %s/%s not found", f, ns, ref.Name)}
			continue
		}
		pemData := []byte(cm.Data[caConfigMapKey])
		if problem := caBundleProblem(pemData); problem != "" {
			l.caRefs = cond{false, string(gwv1.ListenerReasonInvalidCACertificateRef),
				fmt.Sprintf("%s: ConfigMap %s/%s: %s", f, ns, ref.Name, problem)}
			continue
		}
		bundle = append(bundle, pemData...)
		if !strings.HasSuffix(string(pemData), "\n") {
			bundle = append(bundle, '\n')
		}
	}
	if len(bundle) == 0 {
		l.accepted = cond{false, string(gwv1.ListenerReasonNoValidCACertificate),
			fmt.Sprintf("%s: no usable CA certificate; the listener is not served rather than served without the client certificate check", field)}
		return
	}
	l.clientValidation = &ir.ClientValidation{
		CACertPEM:             bundle,
		AllowInsecureFallback: v.Mode == gwv1.AllowInsecureFallback,
	}
}

// caBundleProblem says why data is not a PEM bundle of CA certificates, or
// "".
func caBundleProblem(data []byte) string {
	if len(data) == 0 {
		return "no " + caConfigMapKey + " key"
	}
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return caConfigMapKey + ": " + err.Error()
		}
		n++
	}
	if n == 0 {
		return caConfigMapKey + " holds no PEM certificate"
	}
	return ""
}
