package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/false-systems/rauta/internal/provider/kube"
	"github.com/false-systems/rauta/internal/translate"
)

// statusJob is one sync's route status: the routes as the cache had them
// and the status TranslateMesh computed from them.
type statusJob struct {
	routes []*gwv1.HTTPRoute
	status *translate.Status
}

// routeStatusWriter writes the GAMMA parent entries of HTTPRoutes from the
// one agent holding a Lease (every agent computes the same status; one
// writes it). Syncs post jobs into a mailbox of one: a writer that falls
// behind writes the latest status, never a queue of old ones.
type routeStatusWriter struct {
	client gwclient.Interface
	logger *slog.Logger
	now    func() time.Time
	// jobs holds the latest job; leader says when to write.
	jobs   chan statusJob
	leader chan bool
}

func newRouteStatusWriter(client gwclient.Interface, logger *slog.Logger) *routeStatusWriter {
	return &routeStatusWriter{client: client, logger: logger, now: time.Now, jobs: make(chan statusJob, 1), leader: make(chan bool, 1)}
}

// post replaces the pending job with j.
func (w *routeStatusWriter) post(j statusJob) {
	for {
		select {
		case w.jobs <- j:
			return
		default:
		}
		select {
		case <-w.jobs: // drop the older job
		default:
		}
	}
}

func (w *routeStatusWriter) setLeader(v bool) {
	select {
	case <-w.leader:
	default:
	}
	w.leader <- v
}

// run writes the latest job whenever this agent leads, until ctx ends.
func (w *routeStatusWriter) run(ctx context.Context) {
	var (
		last    statusJob
		have    bool
		leading bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-w.jobs:
			last, have = j, true
		case leading = <-w.leader:
		}
		if leading && have {
			if n, err := w.write(ctx, last); err != nil {
				w.logger.Error("mesh: route status", "err", err)
			} else if n > 0 {
				w.logger.Debug("mesh: route status written", "routes", n)
			}
		}
	}
}

// write brings the GAMMA entries of every route in line with j: written
// where the status wants them, removed from routes that no longer have a
// Service parent, other controllers' entries kept. It returns how many
// routes it wrote.
func (w *routeStatusWriter) write(ctx context.Context, j statusJob) (int, error) {
	now := metav1.NewTime(w.now().Truncate(time.Second))
	want := make(map[types.NamespacedName][]gwv1.RouteParentStatus, len(j.status.HTTPRoutes))
	for _, r := range j.status.HTTPRoutes {
		want[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}] = r.Status.Parents
	}
	var errs []error
	written := 0
	for _, r := range j.routes {
		ours, has := want[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}]
		if !has && !kube.HasParentsOf(translate.MeshControllerName, r.Status.Parents) {
			continue
		}
		if apiequality.Semantic.DeepEqual(r.Status.Parents, kube.MergeParents(translate.MeshControllerName, r.Status.Parents, ours, now)) {
			continue
		}
		routes := w.client.GatewayV1().HTTPRoutes(r.Namespace)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := routes.Get(ctx, r.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			next := kube.MergeParents(translate.MeshControllerName, cur.Status.Parents, ours, now)
			if apiequality.Semantic.DeepEqual(cur.Status.Parents, next) {
				return nil
			}
			cur.Status.Parents = next
			_, err = routes.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		switch {
		case apierrors.IsNotFound(err): // deleted meanwhile
		case err != nil:
			errs = append(errs, fmt.Errorf("status of HTTPRoute %s/%s: %w", r.Namespace, r.Name, err))
		default:
			written++
		}
	}
	return written, errors.Join(errs...)
}

// elect campaigns for the Lease ("namespace/name") until ctx ends and
// tells w when this agent leads. Losing the Lease stops status writing
// only.
func elect(ctx context.Context, client kubernetes.Interface, lease, identity string, w *routeStatusWriter, logger *slog.Logger) {
	ns, name, err := splitLease(lease)
	if err == nil {
		err = kube.Campaign(ctx, client, ns, name, identity,
			func() {
				logger.Info("mesh: elected, this agent writes GAMMA route status", "identity", identity)
				w.setLeader(true)
			},
			func() { w.setLeader(false) })
	}
	if err != nil {
		logger.Error("mesh: GAMMA route status is not written", "err", err)
	}
}

func splitLease(lease string) (string, string, error) {
	ns, name, ok := strings.Cut(lease, "/")
	if !ok || ns == "" || name == "" {
		return "", "", fmt.Errorf("-status-lease %q: want namespace/name", lease)
	}
	return ns, name, nil
}
