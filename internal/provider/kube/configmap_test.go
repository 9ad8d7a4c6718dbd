package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKeepCABundle(t *testing.T) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "ca", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}},
		Data:       map[string]string{"ca.crt": "PEM", "big.json": "{...}"},
		BinaryData: map[string][]byte{"blob": make([]byte, 1<<20)},
	}
	out, err := KeepCABundle(cm)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.ConfigMap)
	if len(got.Data) != 1 || got.Data["ca.crt"] != "PEM" || got.BinaryData != nil || got.ManagedFields != nil || got.Name != "ca" {
		t.Fatalf("kept %+v", got)
	}
	other, _ := KeepCABundle(&corev1.ConfigMap{Data: map[string]string{"app.conf": "x"}})
	if other.(*corev1.ConfigMap).Data != nil {
		t.Fatal("a ConfigMap without ca.crt kept its data")
	}
}
