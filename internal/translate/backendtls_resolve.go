package translate

import (
	"fmt"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

// backendTLSResult is a policy resolved: the TLS settings its backends get
// (nil when the policy cannot be used) and its Accepted and ResolvedRefs
// conditions (Accepted is only about the policy's own content; conflicts
// are decided elsewhere).
type backendTLSResult struct {
	tls      *ir.BackendTLS
	accepted cond
	resolved cond
}

// resolveBackendTLS reads a policy's validation once per translation.
func (t *translator) resolveBackendTLS(p *gwv1.BackendTLSPolicy) *backendTLSResult {
	if r, ok := t.backendTLSOf[p]; ok {
		return r
	}
	r := t.readBackendTLS(p)
	t.backendTLSOf[p] = r
	return r
}

func (t *translator) readBackendTLS(p *gwv1.BackendTLSPolicy) *backendTLSResult {
	v := p.Spec.Validation
	r := &backendTLSResult{
		accepted: cond{true, string(gwv1.PolicyReasonAccepted), "Policy accepted"},
		resolved: cond{true, string(gwv1.BackendTLSPolicyReasonResolvedRefs), "All references resolved"},
	}
	out := &ir.BackendTLS{ServerName: string(v.Hostname)}
	for i, san := range v.SubjectAltNames {
		switch san.Type {
		case gwv1.HostnameSubjectAltNameType:
			out.SubjectAltNames = append(out.SubjectAltNames, strings.ToLower(string(san.Hostname)))
		case gwv1.URISubjectAltNameType:
			out.SubjectAltNames = append(out.SubjectAltNames, string(san.URI))
		default:
			r.accepted = cond{false, string(gwv1.PolicyReasonInvalid), fmt.Sprintf("spec.validation.subjectAltNames[%d].type: %q is not Hostname or URI", i, san.Type)}
			return r
		}
	}
	switch {
	case v.WellKnownCACertificates != nil && *v.WellKnownCACertificates != "" && len(v.CACertificateRefs) > 0:
		r.accepted = cond{false, string(gwv1.PolicyReasonInvalid), "spec.validation: caCertificateRefs and wellKnownCACertificates are exclusive"}
		return r
	case v.WellKnownCACertificates != nil && *v.WellKnownCACertificates != "":
		if *v.WellKnownCACertificates != gwv1.WellKnownCACertificatesSystem {
			r.accepted = cond{false, string(gwv1.PolicyReasonInvalid), fmt.Sprintf("spec.validation.wellKnownCACertificates: %q is not supported; use System", *v.WellKnownCACertificates)}
			return r
		}
		out.SystemCAs = true
		r.tls = out
		return r
	case len(v.CACertificateRefs) == 0:
		r.accepted = cond{false, string(gwv1.PolicyReasonInvalid), "spec.validation: neither caCertificateRefs nor wellKnownCACertificates is set"}
		return r
	}
	var bundle []byte
	var problems []string
	reason := ""
	for i, ref := range v.CACertificateRefs {
		f := fmt.Sprintf("spec.validation.caCertificateRefs[%d]", i)
		if ref.Group != "" || ref.Kind != "ConfigMap" {
			problems = append(problems, fmt.Sprintf("%s: kind %q in group %q is not supported; use a ConfigMap", f, ref.Kind, ref.Group))
			if reason == "" {
				reason = string(gwv1.BackendTLSPolicyReasonInvalidKind)
			}
			continue
		}
		cm, ok := t.ix.configMaps[nsName(p.Namespace, string(ref.Name))]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: ConfigMap %s/%s not found", f, p.Namespace, ref.Name))
			if reason == "" {
				reason = string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef)
			}
			continue
		}
		data := []byte(cm.Data[caConfigMapKey])
		if problem := caBundleProblem(data); problem != "" {
			problems = append(problems, fmt.Sprintf("%s: ConfigMap %s/%s: %s", f, p.Namespace, ref.Name, problem))
			if reason == "" {
				reason = string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef)
			}
			continue
		}
		bundle = append(bundle, data...)
		if !strings.HasSuffix(string(data), "\n") {
			bundle = append(bundle, '\n')
		}
	}
	if len(problems) > 0 {
		r.resolved = cond{false, reason, strings.Join(problems, "; ")}
	}
	if len(bundle) == 0 {
		r.accepted = cond{false, string(gwv1.BackendTLSPolicyReasonNoValidCACertificate),
			"no usable CA certificate; requests to the targeted backends get 500 rather than an unverified or plain-text connection"}
		return r
	}
	out.CACertPEM = bundle
	r.tls = out
	return r
}

// conflictedPolicy returns the policy that takes p's place on one of p's
// targets (same Service, same sectionName or both none): the oldest, then
// first by namespace/name. Nil when p wins everywhere it points.
func (t *translator) conflictedPolicy(p *gwv1.BackendTLSPolicy) *gwv1.BackendTLSPolicy {
	for _, ref := range p.Spec.TargetRefs {
		if ref.Group != "" || ref.Kind != "Service" {
			continue
		}
		sec := ""
		if ref.SectionName != nil {
			sec = string(*ref.SectionName)
		}
		for _, q := range t.ix.tlsPolicies[nsName(p.Namespace, string(ref.Name))] {
			if q == p || !sameTarget(q, string(ref.Name), sec) || !policyBefore(q, p) {
				continue
			}
			return q
		}
	}
	return nil
}

func sameTarget(q *gwv1.BackendTLSPolicy, service, section string) bool {
	for _, ref := range q.Spec.TargetRefs {
		s := ""
		if ref.SectionName != nil {
			s = string(*ref.SectionName)
		}
		if ref.Group == "" && ref.Kind == "Service" && string(ref.Name) == service && s == section {
			return true
		}
	}
	return false
}

// policyBefore is the GEP-713 precedence: older first, then namespace/name.
func policyBefore(a, b *gwv1.BackendTLSPolicy) bool {
	if ta, tb := a.CreationTimestamp, b.CreationTimestamp; !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}
