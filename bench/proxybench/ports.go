package main

import (
	"fmt"
	"net"
	"time"
)

// portsFree fails when another process already listens on one of ports: a
// contender that cannot bind would otherwise be measured through whatever
// holds the port (RAUTA keeps serving when one listener fails to bind).
// Ports are retried briefly because a contender that just stopped may still
// be closing its sockets.
func portsFree(ports ...int) error {
	for _, p := range ports {
		var err error
		for try := 0; try < 20; try++ {
			var l net.Listener
			if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
				l.Close()
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("port %d is in use by another process: %w", p, err)
		}
	}
	return nil
}
