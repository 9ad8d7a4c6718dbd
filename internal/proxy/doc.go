// Package proxy is RAUTA's L7 data plane: it serves an ir.Snapshot.
//
// Apply compiles every listener of a snapshot with package router (off the
// request path), binds sockets for new listeners, keeps the sockets of
// unchanged ones, closes removed ones gracefully and publishes each
// listener's compiled config with one atomic.Pointer store. A request loads
// that pointer once and works on the immutable config it got, so reloads
// never disturb in-flight requests or idle keep-alive connections.
//
// The HTTP engine (net/http for HTTP/1.1, golang.org/x/net/http2 for h2 and
// h2c, crypto/tls for termination) lives in listener.go, h2c.go and tls.go;
// the routing and forwarding logic in handler.go, forward.go and the files
// next to them only sees http.ResponseWriter and *http.Request, so the
// HTTP/1.1 engine can be replaced without touching it.
package proxy
