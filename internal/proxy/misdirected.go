package proxy

import "github.com/false-systems/rauta/internal/router"

// msgMisdirected is the body of a 421 answer, on both HTTP/1.1 paths.
const msgMisdirected = "the Host is served by another listener than the TLS server name"

// misdirected reports an HTTPS request whose Host belongs to another
// Gateway listener (virtual host) than the TLS server name it connected
// with: the connection was set up, and its certificate chosen, for the
// listener of the server name, so the request is answered 421 (RFC 9110
// 15.5.20) rather than served under the other listener's routes. Clients
// that coalesce HTTP/2 connections across names retry on a new connection.
// Without a server name (a client dialling an IP address) nothing can be
// compared.
func misdirected(t *router.Table, serverName, host string) bool {
	return serverName != "" && t.VirtualHost(serverName) != t.VirtualHost(host)
}
