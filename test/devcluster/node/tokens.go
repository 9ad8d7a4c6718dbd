package node

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Token refresh timing, as the kubelet's token manager: renew once 80% of a token's
// lifetime has passed or it is 24 hours old, whichever is first; never try more often
// than every 10 seconds.
const (
	tokenMaxAge       = 24 * time.Hour
	tokenMinInterval  = 10 * time.Second
	tokenRequestLimit = 5 * time.Second
)

// tokenRequester asks the API server for a token of the pod's ServiceAccount, bound to
// the pod, and returns it with its expiry.
type tokenRequester func(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) ([]byte, time.Time, error)

// apiTokenRequester uses the TokenRequest API with the node's credentials: the Node
// authorizer and NodeRestriction allow it for pods bound to this node, bound to the pod.
func apiTokenRequester(cs kubernetes.Interface) tokenRequester {
	return func(ctx context.Context, pod *corev1.Pod, audience string, exp int64) ([]byte, time.Time, error) {
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}
		if audience != "" {
			req.Spec.Audiences = []string{audience}
		}
		ctx, cancel := context.WithTimeout(ctx, tokenRequestLimit)
		defer cancel()
		tr, err := cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("token for serviceaccount %s/%s: %w", pod.Namespace, sa, err)
		}
		return []byte(tr.Status.Token), tr.Status.ExpirationTimestamp.Time, nil
	}
}

// projectedToken is one serviceAccountToken file of one volume and when to renew it.
type projectedToken struct {
	volume    string
	proj      tokenProjection
	refreshAt time.Time
	nextTry   time.Time
}

// tokenRefreshAt is when a token issued at issued and expiring at expires is renewed.
func tokenRefreshAt(issued, expires time.Time) time.Time {
	at := issued.Add(expires.Sub(issued) * 8 / 10)
	if limit := issued.Add(tokenMaxAge); at.After(limit) {
		at = limit
	}
	return at
}

// fetch requests t's token and stores it in the volume's files. On failure it leaves the
// old token and waits tokenMinInterval before the next try.
func (t *projectedToken) fetch(ctx context.Context, req tokenRequester, pod *corev1.Pod, vd *volumeData, now time.Time) error {
	t.nextTry = now.Add(tokenMinInterval)
	token, expires, err := req(ctx, pod, t.proj.audience, t.proj.expirationSeconds)
	if err != nil {
		return err
	}
	t.refreshAt = tokenRefreshAt(now, expires)
	if t.refreshAt.Before(t.nextTry) {
		t.refreshAt = t.nextTry
	}
	vd.files[t.proj.path] = volumeFile{data: token, mode: t.proj.mode}
	return nil
}

// due reports whether t should be renewed at now.
func (t *projectedToken) due(now time.Time) bool {
	return !now.Before(t.refreshAt) && !now.Before(t.nextTry)
}

// fetchTokens requests every serviceAccountToken of the pod's projected volumes and puts
// them into the volumes' files, before any container starts.
func (w *podWorker) fetchTokens(ctx context.Context, volumes map[string]*volumeData, now time.Time) ([]*projectedToken, error) {
	var out []*projectedToken
	for _, name := range sortedKeys(volumes) {
		for _, proj := range volumes[name].tokens {
			t := &projectedToken{volume: name, proj: proj}
			if err := t.fetch(ctx, w.deps.tokens, w.pod, volumes[name], now); err != nil {
				return nil, fmt.Errorf("volume %q: %w", name, err)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// refreshTokens renews the tokens that are due and rewrites their files wherever the
// volume is: the host copy and the root of every image container that mounts it. A
// failed request keeps the old token and is retried after tokenMinInterval.
func (w *podWorker) refreshTokens(ctx context.Context, now time.Time) {
	for _, t := range w.tokens {
		if !t.due(now) {
			continue
		}
		vd := w.volumes[t.volume]
		if err := t.fetch(ctx, w.deps.tokens, w.pod, vd, now); err != nil {
			continue
		}
		f := vd.files[t.proj.path]
		// A write that fails (a container removed its own copy) leaves that copy stale;
		// the next start rebuilds the root with the current token.
		if dir, ok := w.hostVolumes[t.volume]; ok {
			_ = writeFileAt(dir, t.proj.path, f, -1)
		}
		for _, c := range w.containers {
			if c.image == nil {
				continue
			}
			for _, m := range c.mounts {
				if m.volume == t.volume {
					_ = writeFileAt(c.root, path.Join(m.mountPath, t.proj.path), f, w.fsGroup())
				}
			}
		}
	}
}

// writeFileAt writes one volume file inside the folder base (a root or a host copy).
func writeFileAt(base, name string, f volumeFile, gid int) error {
	r, err := os.OpenRoot(base)
	if err != nil {
		return err
	}
	defer r.Close()
	return writeFileIn(r, name, f.data, f.mode, gid)
}
