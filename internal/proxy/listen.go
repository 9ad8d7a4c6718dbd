package proxy

import "net"

// listenTCP opens a TCP listener's socket: Options.Listen's when set (the
// mesh proxy's connections, handed over one by one), else a socket bound
// to addr.
func (s *Server) listenTCP(addr string) (net.Listener, error) {
	if s.opts.Listen != nil {
		return s.opts.Listen(addr)
	}
	return net.Listen("tcp", addr)
}
