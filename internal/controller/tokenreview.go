package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/provision"
)

// tokenReviews authenticates data planes with the API server's TokenReview:
// the token must be valid for configstream.Audience and belong to a
// ServiceAccount. Answers are cached for a minute (bounded), so a data plane
// reconnecting or reporting costs no API request each time.
type tokenReviews struct {
	reviews authnclient.TokenReviewInterface
	now     func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cachedIdentity
}

type cachedIdentity struct {
	id      configstream.Identity
	expires time.Time
}

const (
	tokenCacheTTL  = time.Minute
	tokenCacheSize = 4096
)

func (t *tokenReviews) Authenticate(ctx context.Context, token string) (configstream.Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := t.now()
	t.mu.Lock()
	if c, ok := t.cache[key]; ok && now.Before(c.expires) {
		t.mu.Unlock()
		return c.id, nil
	}
	t.mu.Unlock()

	review, err := t.reviews.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{configstream.Audience}}}, metav1.CreateOptions{})
	if err != nil {
		return configstream.Identity{}, fmt.Errorf("token review: %w", err)
	}
	st := review.Status
	if !st.Authenticated || !slices.Contains(st.Audiences, configstream.Audience) {
		return configstream.Identity{}, fmt.Errorf("%w: %s", configstream.ErrUnauthenticated, st.Error)
	}
	parts := strings.Split(st.User.Username, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" {
		return configstream.Identity{}, fmt.Errorf("%w: %q is not a service account", configstream.ErrUnauthenticated, st.User.Username)
	}
	id := configstream.Identity{Namespace: parts[2], ServiceAccount: parts[3]}
	if pods := st.User.Extra["authentication.kubernetes.io/pod-name"]; len(pods) == 1 {
		id.Pod = pods[0]
	}
	t.mu.Lock()
	if t.cache == nil || len(t.cache) >= tokenCacheSize {
		t.cache = map[[32]byte]cachedIdentity{}
	}
	t.cache[key] = cachedIdentity{id: id, expires: now.Add(tokenCacheTTL)}
	t.mu.Unlock()
	return id, nil
}

// mayRead says whether a data plane's identity may receive a Gateway's
// configuration: only the ServiceAccount the provisioner made for that
// Gateway, in its namespace.
func mayRead(id configstream.Identity, gateway string) bool {
	ns, name, ok := strings.Cut(gateway, "/")
	return ok && id.Namespace == ns && id.ServiceAccount == provision.Name(name)
}
