// Package upstream is RAUTA's pool of HTTP/1.1 connections to backends,
// shared by every client protocol: internal/proxy's HTTP/1.1 engine and its
// net/http path (HTTPS, HTTP/2, requests the engine hands over) take a Conn
// from the one Pool per process, run one exchange on it with internal/h1's
// reader and writer on their own goroutine, and put it back only when the
// response was read completely.
//
// A Pool keeps idle connections per endpoint address, last used first, up
// to 1,024 per address for 90 s; every idle connection is peeked at before
// reuse, so one the backend closed or wrote unasked-for bytes on is never
// taken for the next exchange. A Conn bounds each wait of its exchange
// (BoundExchange, BoundRelay), and Interrupt ends it from any goroutine
// when its request ends. NewOpenConnsCollector exports how many of the
// pool's connections are open, by state, at scrape time.
package upstream
