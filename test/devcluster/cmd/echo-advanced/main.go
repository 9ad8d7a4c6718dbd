// Command echo-advanced stands in for the conformance image
// registry.k8s.io/gateway-api/echo-advanced (Istio's echo app) on the local cluster: run
// as "server" (or under any other name) it serves the echo; run as "client" (the image
// has it at /usr/local/bin/client) or with "client" as its first argument it sends
// requests and prints the responses as Istio's client does. See package echoadvanced.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/false-systems/rauta/test/devcluster/echoadvanced"
)

func main() {
	args := os.Args[1:]
	mode := filepath.Base(os.Args[0])
	if len(args) > 0 && (args[0] == "client" || args[0] == "server") {
		mode, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	if mode == "client" {
		err = client(ctx, args)
	} else {
		err = server(ctx, args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", mode, err)
		os.Exit(1)
	}
}

func client(ctx context.Context, args []string) error {
	cfg, err := echoadvanced.ParseClientArgs(args)
	if err != nil {
		return err
	}
	return echoadvanced.Run(ctx, cfg, os.Stdout)
}

func server(ctx context.Context, args []string) error {
	cfg, err := echoadvanced.ParseServerArgs(args)
	if err != nil {
		return err
	}
	return echoadvanced.Serve(ctx, cfg, func() {
		fmt.Printf("echo-advanced: HTTP %v, gRPC-port HTTP %v, TCP %v, TLS %v\n", cfg.HTTPPorts, cfg.GRPCPorts, cfg.TCPPorts, cfg.TLSPorts)
	})
}
