package kube

import (
	corev1 "k8s.io/api/core/v1"
)

// caBundleKey is the ConfigMap key Gateway API CA references read.
const caBundleKey = "ca.crt"

// KeepCABundle is a cache transform for ConfigMaps: RAUTA reads them only
// for the CA bundles of client certificate validation, so every other key,
// binary data and managed fields are dropped before caching, which keeps a
// cluster's many large ConfigMaps out of the controller's memory.
func KeepCABundle(obj any) (any, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return obj, nil
	}
	cm.ManagedFields = nil
	cm.BinaryData = nil
	if ca, ok := cm.Data[caBundleKey]; ok {
		cm.Data = map[string]string{caBundleKey: ca}
	} else {
		cm.Data = nil
	}
	return cm, nil
}
