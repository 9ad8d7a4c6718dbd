package h2

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// h2specVersion is the h2spec release hack/h2spec.sh builds into the cache.
const h2specVersion = "v2.2.1"

// h2specBody is what the handler answers. It must be at least 5 bytes:
// h2spec skips its flow-control cases (6.9.2) when the response is shorter.
const h2specBody = "hello from rauta h2\n"

// TestH2Spec runs h2spec, the HTTP/2 conformance suite, against Server over
// TLS (ALPN "h2") and over cleartext with prior knowledge. Every failing or
// skipped case is reported with its section, so `h2spec -p PORT SECTION`
// reruns one case. hack/test.sh builds h2spec and sets RAUTA_H2SPEC.
func TestH2Spec(t *testing.T) {
	bin := h2specBinary(t)
	// startTLS and startCleartext (helpers_test.go) send the server's log,
	// hundreds of connection errors h2spec provokes on purpose, to the
	// test's output rather than stderr.
	t.Run("tls", func(t *testing.T) {
		ts := startTLS(t, &Server{}, http.HandlerFunc(h2specHandler))
		runH2Spec(t, bin, "-h", "127.0.0.1", "-p", ts.port(), "-t", "-k")
	})
	t.Run("h2c-prior-knowledge", func(t *testing.T) {
		ts := startCleartext(t, &Server{}, http.HandlerFunc(h2specHandler))
		runH2Spec(t, bin, "-h", "127.0.0.1", "-p", ts.port())
	})
}

// h2specHandler reads the request body and answers 200 with h2specBody.
func h2specHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, h2specBody)
}

// h2specBinary finds h2spec: $RAUTA_H2SPEC, else the cache folder. Without
// it the test skips loudly, except in CI, where every tier must run.
func h2specBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RAUTA_H2SPEC"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("RAUTA_H2SPEC=%s: %v", p, err)
		}
		return p
	}
	cache := os.Getenv("RAUTA_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("find cache folder: %v", err)
		}
		cache = filepath.Join(home, ".cache", "rauta")
	}
	p := filepath.Join(cache, "bin", "h2spec-"+h2specVersion)
	if info, err := os.Stat(p); err == nil && !info.IsDir() {
		return p
	}
	msg := fmt.Sprintf("h2spec not found (RAUTA_H2SPEC unset, no %s): the HTTP/2 conformance tier did NOT run; build it with hack/h2spec.sh", p)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}

// runH2Spec runs h2spec with args and fails with every case that did not
// pass, read from its JUnit report.
func runH2Spec(t *testing.T, bin string, args ...string) {
	t.Helper()
	target := strings.Join(args, " ")
	dir := t.TempDir()
	report := filepath.Join(dir, "report.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// -o 5: seconds h2spec waits for each expected frame.
	args = append(args, "-j", report, "-o", "5")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	runErr := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("h2spec %s did not finish within 3 minutes:\n%s", target, h2specTail(out.String(), 40))
	}

	data, err := os.ReadFile(report)
	if err != nil {
		// h2spec exits without a report when it cannot connect at all.
		t.Fatalf("h2spec %s wrote no report (%v, exit: %v):\n%s", target, err, runErr, h2specTail(out.String(), 40))
	}
	res, err := parseH2SpecReport(data)
	if err != nil {
		t.Fatalf("read h2spec report: %v\n%s", err, h2specTail(out.String(), 60))
	}
	t.Logf("h2spec %s: %d tests, %d passed, %d skipped, %d failed",
		target, res.total, res.passed, len(res.skipped), len(res.failed))
	if res.total == 0 {
		t.Fatalf("h2spec ran no cases:\n%s", h2specTail(out.String(), 40))
	}
	for _, f := range res.failed {
		t.Errorf("%s", f)
	}
	for _, s := range res.skipped {
		// The handler's body is long enough for every case, so a skip means
		// the server sent less than it was given.
		t.Errorf("%s: skipped (the server sent fewer than the %d body bytes the handler wrote)", s, len(h2specBody))
	}
	if runErr != nil && len(res.failed) == 0 && len(res.skipped) == 0 {
		t.Errorf("h2spec exited with %v although its report shows no failures:\n%s", runErr, h2specTail(out.String(), 40))
	}
}

type h2specResult struct {
	total, passed   int
	failed, skipped []string
}

// h2specSuite is one section of h2spec's JUnit report. h2spec writes
// failure texts unescaped, as "expected line(s)\nactual" (or, in its
// unused TestError branch, "Expect:\n...\nActual:\n...").
type h2specSuite struct {
	Package string `xml:"package,attr"` // "http2/6.5.3"
	Name    string `xml:"name,attr"`    // "6.5.3. Settings Synchronization"
	Cases   []struct {
		Desc    string  `xml:"classname,attr"`
		Failure *string `xml:"failure"`
		Error   *string `xml:"error"`
		Skipped *string `xml:"skipped"`
	} `xml:"testcase"`
}

func parseH2SpecReport(data []byte) (h2specResult, error) {
	var doc struct {
		Suites []h2specSuite `xml:"testsuite"`
	}
	var res h2specResult
	if err := xml.Unmarshal(data, &doc); err != nil {
		return res, err
	}
	for _, s := range doc.Suites {
		for i, c := range s.Cases {
			// h2spec numbers the cases of a section from 1, in report order.
			id := fmt.Sprintf("%s/%d %s", s.Package, i+1, c.Desc)
			res.total++
			switch {
			case c.Failure != nil:
				res.failed = append(res.failed, describeH2SpecFailure(id, *c.Failure))
			case c.Error != nil:
				res.failed = append(res.failed, describeH2SpecFailure(id, *c.Error))
			case c.Skipped != nil:
				res.skipped = append(res.skipped, id)
			default:
				res.passed++
			}
		}
	}
	return res, nil
}

func describeH2SpecFailure(id, text string) string {
	text = strings.TrimSpace(text)
	var expected []string
	var actual string
	if rest, ok := strings.CutPrefix(text, "Expect:\n"); ok {
		exp, act, _ := strings.Cut(rest, "\nActual:\n")
		expected, actual = strings.Split(exp, "\n"), act
	} else {
		lines := strings.Split(text, "\n")
		expected, actual = lines[:len(lines)-1], lines[len(lines)-1]
	}
	if len(expected) == 0 {
		return fmt.Sprintf("%s\n\terror: %s", id, actual)
	}
	return fmt.Sprintf("%s\n\texpected: %s\n\tactual:   %s", id, strings.Join(expected, " | "), actual)
}

func h2specTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
