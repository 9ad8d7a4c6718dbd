package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
)

func TestEnvDefaultsFillOnlyFlagsNotGiven(t *testing.T) {
	t.Setenv("RAUTA_ADMIN_ADDR", "127.0.0.1:9999")
	t.Setenv("RAUTA_PORT_OFFSET", "8000")
	t.Setenv("RAUTA_LOG_LEVEL", "debug")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c Common
	c.Register(fs)
	if err := fs.Parse([]string{"-log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if err := EnvDefaults(fs); err != nil {
		t.Fatal(err)
	}
	if c.Opts.AdminAddr != "127.0.0.1:9999" || c.Opts.PortOffset != 8000 {
		t.Errorf("environment not applied: admin %q, offset %d", c.Opts.AdminAddr, c.Opts.PortOffset)
	}
	if c.LogLevel != "warn" {
		t.Errorf("a flag on the command line must win over the environment: log level %q", c.LogLevel)
	}
}

func TestEnvDefaultsRejectBadValues(t *testing.T) {
	t.Setenv("RAUTA_PORT_OFFSET", "eighty")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c Common
	c.Register(fs)
	_ = fs.Parse(nil)
	err := EnvDefaults(fs)
	if err == nil || !strings.Contains(err.Error(), "RAUTA_PORT_OFFSET") {
		t.Fatalf("want an error naming RAUTA_PORT_OFFSET, got %v", err)
	}
}

func TestSetDefault(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c Common
	c.Register(fs)
	SetDefault(fs, "admin-addr", "127.0.0.1:19000")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.Opts.AdminAddr != "127.0.0.1:19000" || fs.Lookup("admin-addr").DefValue != "127.0.0.1:19000" {
		t.Errorf("admin-addr %q (help %q), want the new default", c.Opts.AdminAddr, fs.Lookup("admin-addr").DefValue)
	}
	t.Setenv("RAUTA_ADMIN_ADDR", "127.0.0.1:1")
	if err := EnvDefaults(fs); err != nil || c.Opts.AdminAddr != "127.0.0.1:1" {
		t.Errorf("the environment must still win over a changed default: %q, %v", c.Opts.AdminAddr, err)
	}
}

func TestPathFlags(t *testing.T) {
	finish := func(args ...string) (*Common, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var c Common
		c.Register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		_, err := c.Finish(fs, io.Discard, io.Discard, "test")
		return &c, err
	}
	c, err := finish()
	if err != nil || c.Opts.Paths != (router.PathOptions{EscapedSlashes: router.EscapedSlashesKeep}) {
		t.Errorf("defaults: %+v, %v; want normalise, merge, keep", c.Opts.Paths, err)
	}
	c, err = finish("-normalize-paths=false", "-merge-slashes=false", "-escaped-slashes", "reject")
	if err != nil || c.Opts.Paths != (router.PathOptions{Disable: true, KeepSlashes: true, EscapedSlashes: router.EscapedSlashesReject}) {
		t.Errorf("all set: %+v, %v", c.Opts.Paths, err)
	}
	if _, err := finish("-escaped-slashes", "decode"); err == nil {
		t.Error("-escaped-slashes decode accepted")
	}
}

func TestHealthFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c Common
	c.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finish(fs, io.Discard, io.Discard, "test"); err != nil {
		t.Fatal(err)
	}
	want := lb.HealthOptions{BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 50, RetryBudgetPercent: 20}
	if c.Opts.Health != want {
		t.Errorf("defaults %+v, want %+v", c.Opts.Health, want)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	c = Common{}
	c.Register(fs)
	if err := fs.Parse([]string{"-eject-failed-endpoints=false", "-max-ejection-percent", "0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finish(fs, io.Discard, io.Discard, "test"); err == nil || !c.Opts.Health.Disable {
		t.Errorf("-max-ejection-percent 0 accepted (%v) or -eject-failed-endpoints=false ignored", err)
	}
}

// The limits and timeouts reach gateway.Options from flags and from
// RAUTA_<NAME>, with the proxy's defaults when neither is given.
func TestLimitFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c Common
	c.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	o := c.Opts
	if o.ClientBodyTimeout != time.Minute || o.ClientSendTimeout != time.Minute || o.BackendResponseTimeout != time.Minute ||
		o.BackendIdleTimeout != time.Minute || o.ReadHeaderTimeout != 10*time.Second || o.IdleTimeout != 2*time.Minute ||
		o.MaxHeaderBytes != 60<<10 || o.MaxHeaderFields != 100 || o.MaxResponseHeaderBytes != 60<<10 {
		t.Errorf("defaults: %+v", o)
	}

	t.Setenv("RAUTA_BACKEND_RESPONSE_TIMEOUT", "90s")
	t.Setenv("RAUTA_MAX_HEADER_FIELDS", "50")
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	c = Common{}
	c.Register(fs)
	args := []string{"-client-body-timeout", "5s", "-client-send-timeout", "6s", "-backend-idle-timeout", "7s",
		"-read-header-timeout", "3s", "-idle-timeout", "30s", "-max-header-bytes", "8192", "-max-response-header-bytes", "16384"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := EnvDefaults(fs); err != nil {
		t.Fatal(err)
	}
	o = c.Opts
	if o.ClientBodyTimeout != 5*time.Second || o.ClientSendTimeout != 6*time.Second || o.BackendIdleTimeout != 7*time.Second ||
		o.BackendResponseTimeout != 90*time.Second || o.ReadHeaderTimeout != 3*time.Second || o.IdleTimeout != 30*time.Second ||
		o.MaxHeaderBytes != 8192 || o.MaxHeaderFields != 50 || o.MaxResponseHeaderBytes != 16384 {
		t.Errorf("flags and environment: %+v", o)
	}
}

// The HTTP/2 limits reach the gateway options from flags and the
// environment, and a limit below 1 is refused rather than read as "default".
func TestHTTP2LimitFlags(t *testing.T) {
	t.Setenv("RAUTA_H2_RESET_BUDGET", "50")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c Common
	c.Register(fs)
	if err := fs.Parse([]string{"-h2-max-concurrent-streams", "64", "-h2-max-queued-control-frames", "300"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finish(fs, io.Discard, io.Discard, "test"); err != nil {
		t.Fatal(err)
	}
	l := c.Opts.HTTP2
	if c.Opts.MaxConcurrentStreams != 64 || l.MaxQueuedControlFrames != 300 || l.ResetBudget != 50 || l.MaxContinuationFrames != 24 || l.MaxEmptyFrames != 1 {
		t.Errorf("streams %d, limits %+v", c.Opts.MaxConcurrentStreams, l)
	}
	for _, args := range [][]string{{"-h2-max-empty-frames", "0"}, {"-h2-max-concurrent-streams", "0"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c Common
		c.Register(fs)
		err := fs.Parse(args)
		if err == nil {
			_, err = c.Finish(fs, io.Discard, io.Discard, "test")
		}
		if err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestTracingFlags: tracing is off unless an endpoint is given; the flag
// wins over OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a full URL), which wins
// over OTEL_EXPORTER_OTLP_ENDPOINT (a base URL).
func TestTracingFlags(t *testing.T) {
	finish := func(args ...string) (*Common, error) {
		t.Helper()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		c := &Common{}
		c.Register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		_, err := c.Finish(fs, io.Discard, io.Discard, "test")
		return c, err
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_SERVICE_NAME", "")
	c, err := finish()
	if err != nil || c.Opts.Tracing.Endpoint != "" || c.Opts.Tracing.SampleRatio != 0.01 || c.Opts.Tracing.QueueSize != 2048 {
		t.Errorf("defaults %+v (%v); want off, ratio 0.01, queue 2048", c.Opts.Tracing, err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
	t.Setenv("OTEL_SERVICE_NAME", "edge")
	if c, _ := finish(); c.Opts.Tracing.Endpoint != "http://collector:4318/v1/traces" || c.Opts.Tracing.ServiceName != "edge" {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %+v", c.Opts.Tracing)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/custom")
	if c, _ := finish(); c.Opts.Tracing.Endpoint != "http://traces:4318/custom" {
		t.Errorf("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: %+v", c.Opts.Tracing)
	}
	if c, _ := finish("-otlp-endpoint", "https://flag:4318", "-trace-sample-ratio", "0.5"); c.Opts.Tracing.Endpoint != "https://flag:4318/v1/traces" || c.Opts.Tracing.SampleRatio != 0.5 {
		t.Errorf("-otlp-endpoint: %+v", c.Opts.Tracing)
	}
	for _, bad := range [][]string{{"-trace-sample-ratio", "1.5"}, {"-trace-queue-size", "0"}, {"-otlp-endpoint", "collector:4318"}} {
		if _, err := finish(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
