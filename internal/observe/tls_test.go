package observe

import (
	"flag"
	"slices"
	"testing"
	"time"
)

func TestTLSUprobesOffByDefault(t *testing.T) {
	t.Setenv("RAUTA_TLS_UPROBES", "")
	var c Config
	fs := flag.NewFlagSet("observe", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.TLS.Enabled {
		t.Fatal("TLS uprobes on by default")
	}
	if d := Defaults().TLS; d.Enabled || d.MaxLibs != 64 || d.RingBytes != 4<<20 || d.MaxConns != 16384 || d.ScanInterval != 10*time.Second {
		t.Fatalf("defaults %+v", d)
	}
}

func TestTLSFlags(t *testing.T) {
	t.Setenv("RAUTA_TLS_LIBS", "/env/libssl.so.3")
	var c Config
	fs := flag.NewFlagSet("observe", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if !slices.Equal(c.TLS.Libs, []string{"/env/libssl.so.3"}) {
		t.Fatalf("libs from env %q", c.TLS.Libs)
	}
	if err := fs.Parse([]string{"-tls-uprobes", "-tls-libs", "/a/libssl.so.3, /b/libssl.so.1.1", "-tls-ring-bytes", "65536"}); err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled || !slices.Equal(c.TLS.Libs, []string{"/a/libssl.so.3", "/b/libssl.so.1.1"}) || c.TLS.RingBytes != 65536 {
		t.Fatalf("parsed %+v", c.TLS)
	}
	if errs := c.TLS.validate(); len(errs) != 0 {
		t.Fatalf("valid config refused: %v", errs)
	}
	c.TLS.RingBytes = 5000
	if errs := c.TLS.validate(); len(errs) != 1 {
		t.Fatalf("ring of 5000 bytes: %v, want one error", errs)
	}
	c.TLS.Enabled = false
	if errs := c.TLS.validate(); len(errs) != 0 {
		t.Fatalf("disabled TLS is not validated: %v", errs)
	}
}
