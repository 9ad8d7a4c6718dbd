package capture

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// loadOrSkip loads the observer's programs with opts, closed when the test
// ends. Without root, or when the kernel refuses them for lack of a
// capability or feature, the test is skipped loudly; any other load error
// fails it.
func loadOrSkip(t testing.TB, opts LoadOptions) *Objects {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the kernel program tests need root (CAP_BPF, CAP_NET_ADMIN); run as root to exercise them")
	}
	objs, err := Load(opts)
	if errors.Is(err, ErrPermission) {
		t.Skipf("SKIP: missing capability to load eBPF programs: %v", err)
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("SKIP: kernel feature missing: %v", err)
	}
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	return objs
}

// readerOf opens a reader on objs' ring, closed when the test ends.
func readerOf(t testing.TB, objs *Objects) *Reader {
	t.Helper()
	rd, err := NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return rd
}
