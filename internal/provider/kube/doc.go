// Package kube feeds the translator from a Kubernetes API server: a
// controller-runtime cache watches every kind the translator reads, events are
// coalesced (a short hold-off with a maximum delay), and each batch becomes one
// immutable resources.Resources snapshot listed from the cache.
package kube
