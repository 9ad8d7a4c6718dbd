package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// ShutdownContext returns a context that ends at the first SIGTERM or
// SIGINT, which starts a graceful stop (the drain, then in-flight requests
// finish). A second signal exits at once through exit, with 128 + the
// signal's number as a shell reports it: an operator pressing Ctrl-C twice
// does not want to wait. stop releases the signals.
func ShutdownContext(parent context.Context, stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			// The command's logger may not exist yet; this line has its format.
			slog.New(slog.NewJSONHandler(stderr, nil)).Warn("second signal: exiting without waiting for the drain", "signal", sig.String())
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			exit(code)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}
