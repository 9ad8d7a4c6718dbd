package kube

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var errNoPolicyCRD = &meta.NoKindMatchError{
	GroupKind:        schema.GroupKind{Group: gwv1.GroupName, Kind: "BackendTLSPolicy"},
	SearchedVersions: []string{"v1"},
}

func TestListReadsBackendTLSPolicies(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	policy := &gwv1.BackendTLSPolicy{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default"}}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(policy).Build()
	res, err := List(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BackendTLSPolicies) != 1 || res.BackendTLSPolicies[0].Name != "tls" {
		t.Fatalf("BackendTLSPolicies = %+v, want the one policy", res.BackendTLSPolicies)
	}
}

// A cluster without the BackendTLSPolicy CRD has no policies; any other
// listing error still fails the snapshot.
func TestListWithoutBackendTLSPolicyCRD(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	listErr := error(errNoPolicyCRD)
	cl := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error {
			if _, ok := l.(*gwv1.BackendTLSPolicyList); ok {
				return listErr
			}
			return c.List(ctx, l, opts...)
		},
	}).Build()
	if _, err := List(context.Background(), cl); err != nil {
		t.Fatalf("List without the CRD: %v", err)
	}
	listErr = errors.New("connection refused")
	if _, err := List(context.Background(), cl); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("List with a failing policy list = %v, want the error", err)
	}
}

// informers answers GetInformer: NoMatch for kinds in missing, a recording
// informer for the others.
type informers struct {
	missing map[string]bool
	watched []string
}

type recordingInformer struct {
	cache.Informer // only AddEventHandler is used
}

func (recordingInformer) AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return nil, nil
}

func (f *informers) GetInformer(_ context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	kind := reflect.TypeOf(obj).Elem().Name()
	if f.missing[kind] {
		return nil, &meta.NoKindMatchError{GroupKind: schema.GroupKind{Kind: kind}}
	}
	f.watched = append(f.watched, kind)
	return recordingInformer{}, nil
}

func TestWatchSkipsOnlyOptionalMissingKinds(t *testing.T) {
	f := &informers{missing: map[string]bool{"BackendTLSPolicy": true}}
	if err := Watch(context.Background(), f, func() {}); err != nil {
		t.Fatalf("Watch without the BackendTLSPolicy CRD: %v", err)
	}
	if len(f.watched) != len(WatchedKinds())-1 || slices.Contains(f.watched, "BackendTLSPolicy") {
		t.Errorf("watched %v, want every kind but BackendTLSPolicy", f.watched)
	}
	f = &informers{}
	if err := Watch(context.Background(), f, func() {}); err != nil || !slices.Contains(f.watched, "BackendTLSPolicy") {
		t.Fatalf("Watch = %v, watched %v; want BackendTLSPolicy watched when its CRD exists", err, f.watched)
	}
	f = &informers{missing: map[string]bool{"HTTPRoute": true}}
	if err := Watch(context.Background(), f, func() {}); err == nil {
		t.Fatal("Watch without the HTTPRoute CRD succeeded; a required kind must fail")
	}
}
