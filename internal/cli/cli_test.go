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
