package devcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const pollInterval = 250 * time.Millisecond

// poll calls check until it reports done, the process exits, or timeout passes. The last
// check error is part of the timeout error so a failed start says why.
func poll(ctx context.Context, what string, p *process, timeout time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p != nil {
			if exited, err := p.exited(); exited {
				if err == nil {
					err = errors.New("exit status 0")
				}
				return fmt.Errorf("%s: %s exited (%w); log %s:\n%s", what, p.name, err, p.logPath, p.logTail())
			}
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("%s: not ready after %s", what, timeout)
			if last != nil {
				msg += fmt.Sprintf(" (last error: %v)", last)
			}
			if p != nil {
				msg += fmt.Sprintf("; log %s:\n%s", p.logPath, p.logTail())
			}
			return fmt.Errorf("%s", msg)
		case <-time.After(pollInterval):
		}
	}
}

func waitEtcd(ctx context.Context, url string, p *process, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, "wait for etcd", p, timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("etcd /health: %s", resp.Status)
	})
}

func waitAPIServer(ctx context.Context, cfg *rest.Config, p *process, timeout time.Duration) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("api server client: %w", err)
	}
	return poll(ctx, "wait for kube-apiserver", p, timeout, func(ctx context.Context) (bool, error) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return false, err
		}
		return string(body) == "ok", fmt.Errorf("readyz: %q", body)
	})
}

// waitDefaultServiceAccount waits for the controller manager's serviceaccount controller:
// until "default/default" exists the ServiceAccount admission plugin rejects every pod.
func waitDefaultServiceAccount(ctx context.Context, cfg *rest.Config, p *process, timeout time.Duration) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("api server client: %w", err)
	}
	return poll(ctx, "wait for kube-controller-manager", p, timeout, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("service account default/default not created yet")
		}
		return err == nil, err
	})
}
