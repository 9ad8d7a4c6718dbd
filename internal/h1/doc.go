// Package h1 is RAUTA's HTTP/1.1 wire engine, the twin of internal/h2: what
// reads and writes HTTP/1.1 messages on a socket, with no routing in it.
//
//   - Heads: ParseRequestHead accepts the strict subset the engine serves
//     (anything else is left to net/http), ParseResponseHead frames a
//     backend's response (ErrBadResponse for what cannot be relayed), and
//     Fields is a header list in wire order with the hop-by-hop rules
//     (IsHopField, NamedByConnection, HasToken) and AppendField to write one.
//   - Bodies: Reader.ChunkSize, ChunkEnd and TrailerLine read the chunked
//     framing (RFC 9112 7.1), checked once here for every caller.
//   - I/O: Socket reads and writes a TCP socket with raw non-blocking system
//     calls under the netpoller, bounds each wait (BoundReads, BoundWrites,
//     a check while a read waits), can be interrupted from any goroutine,
//     peeks at idle connections, reads an idle connection without
//     holding a buffer (ReadIdle), writes a request and waits for its
//     answer in one netpoller call (WriteRead), and runs a read loop whose
//     every wait needs no read that finds nothing first (ReadLoop). Reader
//     parses heads in place from its
//     buffer; Writer batches what goes out and borrows a relay buffer for
//     large bodies only while they move.
//   - Connections: Conn runs a client connection's request loop (read a
//     head within IdleTimeout and ReadHeaderTimeout, refuse what is over
//     the limits with 408, 414 or 431, pass the rest to a Handler, hand
//     what is outside the subset to Config.Handoff, close with a
//     lingering close), serves bodiless keep-alive requests inside one
//     read loop (serveloop.go), gives its buffers back to a shared pool
//     while it waits for the next request (buffers.go), and writes response heads
//     (respond.go); Conns is the set of a socket's connections that drain
//     and shutdown work on.
//   - Limits: MaxRequestURI, the response head and interim response caps
//     (ReadFinalHead, MaxInterim), MaxChunkLine, MaxKeptHead, and the head
//     size limit a caller passes to ReadHead (ErrHeadTooLarge).
//
// Nothing here allocates per message once buffers are warm: heads are read
// into caller-owned scratch buffers and parsed into views of them.
// internal/proxy is the Handler: it routes, filters and forwards with it;
// docs/proxy.md describes the engine's behaviour.
package h1
