package chart_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/integration/harness"
)

// firstGatewayYAML is docs/install.md's first Gateway and route, to the
// echo Service "web" (port 8080).
const firstGatewayYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: demo, namespace: default}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: http, protocol: HTTP, port: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: demo}]
  rules:
  - backendRefs: [{name: web, port: 8080}]
`

// firstGateway does what docs/install.md tells a new user to do: a Gateway
// of the chart's class and a route, then curl the Gateway's address. It
// checks that the chart-installed controller provisions a data plane that
// serves, and that deleting the Gateway removes the data plane.
func firstGateway(ctx context.Context, t *testing.T, c *devcluster.Cluster, cs kubernetes.Interface) {
	t.Helper()
	echo := strings.NewReplacer("@NS@", "default", "@NAME@", "web", "@REPLICAS@", "1").Replace(harness.EchoYAML)
	if err := c.Apply(ctx, []byte(echo+"\n---\n"+firstGatewayYAML)); err != nil {
		t.Fatalf("apply the first Gateway: %v", err)
	}
	addr, err := waitProgrammed(ctx, c, 3*time.Minute)
	if err != nil {
		t.Error(err)
		dumpPodsIn(ctx, t, cs, "default")
		return
	}
	url := "http://" + addr + "/"
	var last string
	ok := false
	httpc := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		resp, err := httpc.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		var echoed struct{ Namespace, Pod string }
		if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &echoed) == nil && echoed.Namespace == "default" && strings.HasPrefix(echoed.Pod, "web-") {
			t.Logf("GET %s through Gateway demo: 200 from echo pod %s", url, echoed.Pod)
			ok = true
			break
		}
	}
	if !ok {
		t.Errorf("GET %s through the Gateway: %s", url, last)
		dumpPodsIn(ctx, t, cs, "default")
	}

	// The data plane is owned by the Gateway: deleting it removes them.
	gws := gatewayClient(t, c)
	if err := gws.Delete(ctx, &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "default"}}); err != nil {
		t.Fatalf("delete Gateway: %v", err)
	}
	var left string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		ds, err := cs.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=rauta"})
		if err == nil && len(ds.Items) == 0 {
			return
		}
		if err != nil {
			left = err.Error()
		} else {
			left = fmt.Sprintf("%d data-plane Deployments", len(ds.Items))
		}
	}
	t.Errorf("data plane not removed a minute after its Gateway: %s", left)
}

func gatewayClient(t *testing.T, c *devcluster.Cluster) client.Client {
	t.Helper()
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: gatewayScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// waitProgrammed polls (bounded) until Gateway default/demo is Programmed
// and returns its first address.
func waitProgrammed(ctx context.Context, c *devcluster.Cluster, limit time.Duration) (string, error) {
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: gatewayScheme()})
	if err != nil {
		return "", err
	}
	var last string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Second) {
		var gw gatewayv1.Gateway
		if err := cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: "demo"}, &gw); err != nil {
			if !apierrors.IsNotFound(err) {
				last = err.Error()
			}
			continue
		}
		for _, cond := range gw.Status.Conditions {
			if cond.Type != string(gatewayv1.GatewayConditionProgrammed) {
				continue
			}
			last = fmt.Sprintf("Programmed=%s %s: %s, addresses %v", cond.Status, cond.Reason, cond.Message, gw.Status.Addresses)
			if cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == gw.Generation && len(gw.Status.Addresses) > 0 {
				return gw.Status.Addresses[0].Value, nil
			}
		}
	}
	return "", fmt.Errorf("Gateway demo not Programmed within %v: %s", limit, last)
}

func gatewayScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := gatewayv1.Install(s); err != nil {
		panic(err)
	}
	return s
}
