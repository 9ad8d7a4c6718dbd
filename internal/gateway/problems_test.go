package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/objstatus"
)

// listed is a Status that lists given problems (translate.Status's
// Problems are tested in package translate).
type listed []objstatus.Problem

func (l listed) Problems() []objstatus.Problem { return l }

func TestProblemsAreLoggedOnceWhenTheyAppear(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	bad := objstatus.Problem{Kind: "HTTPRoute", Name: "default/web", Part: "parent gw", Type: "ResolvedRefs", Status: "False",
		Reason: "BackendNotFound", Message: "spec.rules[0].backendRefs[0]: Service default/nope not found"}
	partial := objstatus.Problem{Kind: "HTTPRoute", Name: "default/web", Part: "parent gw", Type: "PartiallyInvalid", Status: "True", Reason: "UnsupportedValue"}

	first := problemSet(listed{bad})
	logNewProblems(logger, nil, first)
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.Contains(buf.String(), "Service default/nope not found") {
		t.Fatalf("want one line naming the field, got:\n%s", buf.String())
	}
	// The same problem again is not news.
	buf.Reset()
	second := problemSet(listed{bad})
	logNewProblems(logger, first, second)
	if buf.Len() != 0 {
		t.Fatalf("a known problem was logged again:\n%s", buf.String())
	}
	// A new problem is.
	third := problemSet(listed{bad, partial})
	logNewProblems(logger, second, third)
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.Contains(buf.String(), "PartiallyInvalid") {
		t.Fatalf("want one line for the new problem, got:\n%s", buf.String())
	}
	if len(problemSet(NoStatus{})) != 0 {
		t.Error("NoStatus has problems")
	}
}
