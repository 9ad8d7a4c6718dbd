// Command scale runs RAUTA's control-plane and router scale benchmarks with
// `go test -bench -benchmem` and prints them as tables: translate and
// compile time, data-plane heap and lookup time at 10, 1,000 and 10,000
// HTTPRoutes; Maglev table build time at 3, 100 and 1,000 backends; and the
// request hot paths with allocations per request.
//
//	go run ./bench/scale [-count 3] [-benchtime 1s] [-out scale.json]
//
// Run it from the module root. The benchmarks themselves live next to the
// code they measure (internal/translate, internal/router, internal/lb).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// suite is one `go test -bench` invocation.
type suite struct {
	pkg     string
	pattern string
}

var suites = []suite{
	{"./internal/translate/", "^BenchmarkTranslateRoutes$"},
	{"./internal/router/", "^(BenchmarkCompileRoutes|BenchmarkLookupRoutes|BenchmarkRequestPathRoutes|BenchmarkMatch|BenchmarkPickBackend|BenchmarkHeaderFilter)$"},
	{"./internal/lb/", "^(BenchmarkMaglevBuild|BenchmarkPick|BenchmarkHashAndPickMaglev)$"},
}

func main() {
	count := flag.Int("count", 1, "go test -count: runs of every benchmark (the table shows medians)")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	out := flag.String("out", "", "also write the parsed results as JSON to this file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := results{}
	var cmds []string
	for _, s := range suites {
		argv := []string{"go", "test", "-run", "^$", "-bench", s.pattern, "-benchmem",
			"-benchtime", *benchtime, "-count", fmt.Sprint(*count), s.pkg}
		cmds = append(cmds, strings.Join(argv, " "))
		fmt.Fprintln(os.Stderr, "running:", strings.Join(argv, " "))
		var buf bytes.Buffer
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&buf, os.Stderr), os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "scale: %s: %v\n", s.pkg, err)
			os.Exit(1)
		}
		if err := res.parse(strings.TrimSuffix(strings.TrimPrefix(s.pkg, "./internal/"), "/"), buf.String()); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
	}
	fmt.Print(res.tables())
	fmt.Println("\ncommands:\n  " + strings.Join(cmds, "\n  "))
	if *out != "" {
		b, _ := json.MarshalIndent(map[string]any{"commands": cmds, "benchmarks": res.medians()}, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		os.Exit(130)
	}
}
