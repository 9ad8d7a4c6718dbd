package node

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// refSource reads the ConfigMaps and Secrets that env entries refer to.
type refSource interface {
	configMap(ctx context.Context, namespace, name string) (map[string]string, error)
	secret(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// containerEnv computes a container's environment as the kubelet does: envFrom first, then
// env in order, each value expanding $(NAME) references to variables defined before it.
// Service-link variables are not set: ClusterIPs are not routed on this node. HOSTNAME and
// PATH defaults are added by the caller (withEnvDefaults), after an image's own Env.
func containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIP, hostIP string, refs refSource) ([]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for i, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			data, err := refs.configMap(ctx, pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				if optional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %q envFrom[%d]: configmap %q: %w", c.Name, i, from.ConfigMapRef.Name, err)
			}
			for _, k := range sortedKeys(data) {
				set(from.Prefix+k, data[k])
			}
		case from.SecretRef != nil:
			data, err := refs.secret(ctx, pod.Namespace, from.SecretRef.Name)
			if err != nil {
				if optional(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %q envFrom[%d]: secret %q: %w", c.Name, i, from.SecretRef.Name, err)
			}
			for _, k := range sortedKeys(data) {
				set(from.Prefix+k, string(data[k]))
			}
		}
	}
	for i, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expandEnv(e.Value, vars))
			continue
		}
		v, skip, err := envValueFrom(ctx, pod, e.ValueFrom, podIP, hostIP, refs)
		if err != nil {
			return nil, fmt.Errorf("container %q env[%d] %q: %w", c.Name, i, e.Name, err)
		}
		if !skip {
			set(e.Name, v)
		}
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	return env, nil
}

// envValueFrom resolves one valueFrom. skip is true for a missing optional key.
func envValueFrom(ctx context.Context, pod *corev1.Pod, src *corev1.EnvVarSource, podIP, hostIP string, refs refSource) (value string, skip bool, err error) {
	switch {
	case src.FieldRef != nil:
		v, err := podField(pod, src.FieldRef.FieldPath, podIP, hostIP)
		return v, false, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		data, err := refs.configMap(ctx, pod.Namespace, ref.Name)
		if err != nil {
			return "", optional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("configmap %q: %w", ref.Name, err))
		}
		v, ok := data[ref.Key]
		if !ok {
			return "", optional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("configmap %q has no key %q", ref.Name, ref.Key))
		}
		return v, false, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		data, err := refs.secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			return "", optional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("secret %q: %w", ref.Name, err))
		}
		v, ok := data[ref.Key]
		if !ok {
			return "", optional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("secret %q has no key %q", ref.Name, ref.Key))
		}
		return string(v), false, nil
	case src.ResourceFieldRef != nil:
		return "", false, fmt.Errorf("resourceFieldRef %q is not supported by the devcluster node", src.ResourceFieldRef.Resource)
	default:
		return "", false, fmt.Errorf("valueFrom names no source")
	}
}

// podField implements the downward API field paths the kubelet supports for env.
func podField(pod *corev1.Pod, path, podIP, hostIP string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok {
			if key, ok = strings.CutSuffix(key, "']"); ok && key != "" {
				return m[key], nil
			}
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

// expandEnv replaces $(NAME) with the value of an earlier variable; $$ escapes a dollar,
// and references to unknown names stay as written, as in the kubelet.
func expandEnv(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func optional(p *bool) bool { return p != nil && *p }

func optionalErr(p *bool, err error) error {
	if optional(p) {
		return nil
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// apiServiceIP is the ClusterIP the API server gives the default/kubernetes
// Service: the first address of the Service CIDR. Invalid without one.
func apiServiceIP(serviceCIDR string) netip.Addr {
	p, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return netip.Addr{}
	}
	return p.Masked().Addr().Next()
}

// apiServiceEnv is what the kubelet gives every container so in-cluster
// clients find the API server: KUBERNETES_SERVICE_HOST and friends, for the
// default/kubernetes Service on 443 (the cluster's service proxy forwards it).
func apiServiceEnv(ip netip.Addr) []string {
	if !ip.IsValid() {
		return nil
	}
	host := ip.String()
	return []string{
		"KUBERNETES_SERVICE_HOST=" + host,
		"KUBERNETES_SERVICE_PORT=443",
		"KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://" + host + ":443",
		"KUBERNETES_PORT_443_TCP=tcp://" + host + ":443",
		"KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_PORT_443_TCP_PORT=443",
		"KUBERNETES_PORT_443_TCP_ADDR=" + host,
	}
}
