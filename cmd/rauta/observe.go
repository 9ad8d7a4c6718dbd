package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/false-systems/rauta/internal/observe"
)

func runObserve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rauta observe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg observe.Config
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Output = stdout
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: l}))
	return observe.Run(ctx, cfg, logger)
}
