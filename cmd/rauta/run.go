package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/false-systems/rauta/internal/standalone"
)

func runStandalone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rauta run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	path := fs.String("f", "", "manifest file or folder (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := c.finish(fs, stdout, stderr)
	if err != nil {
		return err
	}
	if *path == "" {
		fs.Usage()
		return errors.New("-f is required")
	}
	return standalone.Run(ctx, standalone.Config{Options: c.opts, Path: *path, ControllerName: c.controllerName}, logger)
}
