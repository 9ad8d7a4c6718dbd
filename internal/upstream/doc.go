// Package upstream is RAUTA's pool of HTTP/1.1 connections to backends and
// the one backend exchange over it, shared by every client protocol:
// internal/proxy's HTTP/1.1 engine and its net/http path (HTTPS, HTTP/2,
// requests the engine hands over) each run a request through an Exchange
// on the client's own goroutine, with internal/h1's reader and writer, and
// relay the response body from its connection.
//
// A Pool keeps idle connections per endpoint address, last used first, up
// to 1,024 per address for 90 s; every idle connection is peeked at before
// reuse, so one the backend closed or wrote unasked-for bytes on is never
// taken for the next exchange. NewOpenConnsCollector exports how many of
// the pool's connections are open, by state, at scrape time.
//
// An Exchange writes the request head and a body of known length, reads
// the final response head (1xx interim responses dropped), and bounds
// each wait: BackendResponseTimeout for the head, BackendIdleTimeout for
// each wait to send (and, after Relay, to receive the body), the route's
// deadline over all. A client that goes away ends it, through Check (a
// hang-up peek run while a read waits) or Interrupt (from any goroutine).
// Its errors say which wait ended it (ErrResponseTimeout, ErrSendTimeout,
// ErrInterrupted, ClientError), and a reused connection that fails before
// any response byte is retried once on a new one for a replayable request.
// Finish pools the connection only when its response was read completely.
package upstream
