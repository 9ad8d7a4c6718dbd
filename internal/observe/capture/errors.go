package capture

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ErrPermission is wrapped into errors caused by missing privileges.
var ErrPermission = errors.New("missing privileges: the observer needs CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN on kernels before 5.8, and to attach in another network namespace)")

// ErrNotSupported is cilium/ebpf's sentinel, re-exported so callers can
// test for an old kernel without importing cilium/ebpf.
var ErrNotSupported = ebpf.ErrNotSupported

// explainPerm turns EPERM/EACCES into an error that names the missing
// capabilities while keeping the original in the chain.
func explainPerm(err error) error {
	if err == nil {
		return nil
	}
	// The verifier reports rejections as EACCES too; those are bugs in the
	// program or an unsupported kernel, not missing capabilities.
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return err
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}
