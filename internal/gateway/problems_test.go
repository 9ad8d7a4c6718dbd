package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/translate"
)

func routeStatus(gen int64, conds ...metav1.Condition) *translate.Status {
	for i := range conds {
		conds[i].ObservedGeneration = gen
	}
	st := gwv1.HTTPRouteStatus{}
	st.Parents = []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, Conditions: conds}}
	return &translate.Status{HTTPRoutes: []translate.HTTPRouteStatus{{Namespace: "default", Name: "web", Status: st}}}
}

func TestProblemsAreLoggedOnceWhenTheyAppear(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	ok := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}
	bad := metav1.Condition{Type: "ResolvedRefs", Status: metav1.ConditionFalse, Reason: "BackendNotFound", Message: "spec.rules[0].backendRefs[0]: Service default/nope not found"}
	partial := metav1.Condition{Type: "PartiallyInvalid", Status: metav1.ConditionTrue, Reason: "UnsupportedValue"}

	first := problems(routeStatus(1, ok, bad))
	logNewProblems(logger, nil, first)
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.Contains(buf.String(), "Service default/nope not found") {
		t.Fatalf("want one line naming the field, got:\n%s", buf.String())
	}
	// The same problem at a new generation is not news.
	buf.Reset()
	second := problems(routeStatus(2, ok, bad))
	logNewProblems(logger, first, second)
	if buf.Len() != 0 {
		t.Fatalf("a known problem was logged again:\n%s", buf.String())
	}
	// A new problem is; PartiallyInvalid counts when True.
	third := problems(routeStatus(3, ok, bad, partial))
	logNewProblems(logger, second, third)
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.Contains(buf.String(), "PartiallyInvalid") {
		t.Fatalf("want one line for the new problem, got:\n%s", buf.String())
	}
}
