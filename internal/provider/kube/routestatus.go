package kube

import (
	"context"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// writeRoutes writes the parent entries of every route kind RAUTA reports on.
func (w *StatusWriter) writeRoutes(ctx context.Context, res *resources.Resources, st *translate.Status, now metav1.Time, note func(bool, error)) {
	want := make(map[client.ObjectKey][]gwv1.RouteParentStatus)
	for _, r := range st.HTTPRoutes {
		want[client.ObjectKey{Namespace: r.Namespace, Name: r.Name}] = r.Status.Parents
	}
	writeRouteKind(ctx, w, res.HTTPRoutes, want, func() *gwv1.HTTPRoute { return &gwv1.HTTPRoute{} },
		func(r *gwv1.HTTPRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }, now, note)

	want = make(map[client.ObjectKey][]gwv1.RouteParentStatus)
	for _, r := range st.GRPCRoutes {
		want[client.ObjectKey{Namespace: r.Namespace, Name: r.Name}] = r.Status.Parents
	}
	writeRouteKind(ctx, w, res.GRPCRoutes, want, func() *gwv1.GRPCRoute { return &gwv1.GRPCRoute{} },
		func(r *gwv1.GRPCRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }, now, note)

	want = make(map[client.ObjectKey][]gwv1.RouteParentStatus)
	for _, r := range st.TLSRoutes {
		want[client.ObjectKey{Namespace: r.Namespace, Name: r.Name}] = r.Status.Parents
	}
	writeRouteKind(ctx, w, res.TLSRoutes, want, func() *gwv1.TLSRoute { return &gwv1.TLSRoute{} },
		func(r *gwv1.TLSRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }, now, note)

	want = make(map[client.ObjectKey][]gwv1.RouteParentStatus)
	for _, r := range st.TCPRoutes {
		want[client.ObjectKey{Namespace: r.Namespace, Name: r.Name}] = r.Status.Parents
	}
	writeRouteKind(ctx, w, res.TCPRoutes, want, func() *gwv1.TCPRoute { return &gwv1.TCPRoute{} },
		func(r *gwv1.TCPRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }, now, note)

	want = make(map[client.ObjectKey][]gwv1.RouteParentStatus)
	for _, r := range st.UDPRoutes {
		want[client.ObjectKey{Namespace: r.Namespace, Name: r.Name}] = r.Status.Parents
	}
	writeRouteKind(ctx, w, res.UDPRoutes, want, func() *gwv1.UDPRoute { return &gwv1.UDPRoute{} },
		func(r *gwv1.UDPRoute) *[]gwv1.RouteParentStatus { return &r.Status.Parents }, now, note)
}

// writeRouteKind brings the RAUTA parent entries of every route of one kind
// in line with want, keyed by route: entries are written where wanted and
// removed from routes that carry RAUTA entries but are no longer wanted.
// Other controllers' entries are kept.
func writeRouteKind[T client.Object](ctx context.Context, w *StatusWriter, routes []T, want map[client.ObjectKey][]gwv1.RouteParentStatus,
	newObject func() T, parents func(T) *[]gwv1.RouteParentStatus, now metav1.Time, note func(bool, error)) {
	for _, r := range routes {
		key := client.ObjectKeyFromObject(r)
		ours, has := want[key]
		if !has && !w.hasOurParents(*parents(r)) {
			continue
		}
		// The cached route is checked without copying it (mergeParents
		// builds a new slice): at a thousand routes a deep copy of each,
		// managedFields and all, was most of a status pass that changed
		// one route.
		if current := *parents(r); apiequality.Semantic.DeepEqual(current, w.mergeParents(current, ours, now)) {
			continue
		}
		note(w.update(ctx, nil, newObject(), key, func(o client.Object) bool {
			current := parents(o.(T))
			next := w.mergeParents(*current, ours, now)
			if apiequality.Semantic.DeepEqual(*current, next) {
				return false
			}
			*current = next
			return true
		}))
	}
}
