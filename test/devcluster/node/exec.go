package node

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netns"
)

// startInNetns starts cmd inside the named network namespace (empty: the host namespace,
// for hostNetwork pods). The child is forked from a locked OS thread switched into the
// namespace, so it inherits it; the thread is switched back afterwards, or discarded if
// that fails.
func startInNetns(name string, cmd *exec.Cmd) error {
	if name == "" {
		return cmd.Start()
	}
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		startErr := cmd.Start()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(startErr, fmt.Errorf("leave namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- startErr
	}()
	return <-errc
}
