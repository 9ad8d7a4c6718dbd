package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/false-systems/rauta/internal/cli"
	"github.com/false-systems/rauta/internal/standalone"
)

func runStandalone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rauta run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c cli.Common
	c.Register(fs)
	path := fs.String("f", "", "manifest file or folder (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := c.Finish(fs, stdout, stderr, version)
	if err != nil {
		return err
	}
	if *path == "" {
		fs.Usage()
		return errors.New("-f is required")
	}
	return standalone.Run(ctx, standalone.Config{Options: c.Opts, Path: *path, ControllerName: c.ControllerName}, logger)
}
