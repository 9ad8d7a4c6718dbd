package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mapRefs serves ConfigMaps and Secrets from memory: the env code under test only needs
// their data, and the real API path is covered by the cluster test.
type mapRefs struct {
	cms     map[string]map[string]string
	secrets map[string]map[string][]byte
}

var errNotFound = errors.New("not found")

func (m mapRefs) configMap(_ context.Context, ns, name string) (map[string]string, error) {
	if d, ok := m.cms[ns+"/"+name]; ok {
		return d, nil
	}
	return nil, errNotFound
}

func (m mapRefs) secret(_ context.Context, ns, name string) (map[string][]byte, error) {
	if d, ok := m.secrets[ns+"/"+name]; ok {
		return d, nil
	}
	return nil, errNotFound
}

func TestContainerEnv(t *testing.T) {
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "ns1", UID: "u-1", Labels: map[string]string{"app": "echo"}},
		Spec:       corev1.PodSpec{NodeName: "n1", ServiceAccountName: "sa"},
	}
	refs := mapRefs{
		cms:     map[string]map[string]string{"ns1/cfg": {"B": "2", "A": "1"}},
		secrets: map[string]map[string][]byte{"ns1/sec": {"token": []byte("s3cret")}},
	}
	c := &corev1.Container{
		Name:    "echo",
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
			{Name: "MISSING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: &yes}}},
			{Name: "GREETING", Value: "hi $(POD_NAME) at $(IP), $$(POD_NAME) $(UNDEFINED)"},
		},
	}
	env, err := containerEnv(context.Background(), pod, c, "10.244.0.9", "127.0.0.1", refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CFG_A=1", "CFG_B=2", "POD_NAME=echo-1", "NAMESPACE=ns1", "IP=10.244.0.9", "APP=echo", "TOKEN=s3cret",
		"GREETING=hi echo-1 at 10.244.0.9, $(POD_NAME) $(UNDEFINED)",
	}
	for _, w := range want {
		if !slices.Contains(env, w) {
			t.Errorf("env lacks %q; got %v", w, env)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "MISSING=") {
			t.Errorf("optional missing key produced %q", kv)
		}
	}
}

func TestContainerEnvErrorsNameTheField(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	tests := []struct {
		name string
		env  corev1.EnvVar
		want string
	}{
		{"missing configmap", corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "k"}}}, `env[0] "X": configmap "cm"`},
		{"bad field path", corev1.EnvVar{Name: "Y", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.containers"}}}, `fieldRef "spec.containers" is not supported`},
		{"resource field", corev1.EnvVar{Name: "Z", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}, `resourceFieldRef "limits.cpu"`},
	}
	for _, tt := range tests {
		c := &corev1.Container{Name: "c", Env: []corev1.EnvVar{tt.env}}
		_, err := containerEnv(context.Background(), pod, c, "", "", mapRefs{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	vars := map[string]string{"A": "x", "B": "y"}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "x"},
		{"$(A)$(B)", "xy"},
		{"$$(A)", "$(A)"},
		{"$(C)", "$(C)"},
		{"$()", "$()"},
		{"$(A", "$(A"},
		{"cost $5", "cost $5"},
		{"end$", "end$"},
	}
	for _, tt := range tests {
		if got := expandEnv(tt.in, vars); got != tt.want {
			t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzExpandEnv: user-written env values must never panic, and text without "$" must pass
// through unchanged.
func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{"", "$(A)", "$$", "$(", "a$(B)c$$(A)", "$(A)$(", "$$$(A)"} {
		f.Add(s)
	}
	vars := map[string]string{"A": "x", "B": "$(A)"}
	f.Fuzz(func(t *testing.T, s string) {
		got := expandEnv(s, vars)
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("expandEnv(%q) = %q without any reference", s, got)
		}
	})
}

func TestAPIServiceEnv(t *testing.T) {
	env := apiServiceEnv(apiServiceIP("10.96.213.0/24"))
	want := map[string]bool{"KUBERNETES_SERVICE_HOST=10.96.213.1": true, "KUBERNETES_SERVICE_PORT=443": true}
	for _, kv := range env {
		delete(want, kv)
	}
	if len(want) != 0 {
		t.Errorf("env %v lacks %v", env, want)
	}
	if env := apiServiceEnv(apiServiceIP("")); env != nil {
		t.Errorf("without a Service CIDR: %v, want nothing", env)
	}
}
