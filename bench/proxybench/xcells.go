package main

import (
	"fmt"
	"time"
)

// xcell is one cell of issue 18's groups, measured by this binary's own
// client ("proxybench client") or, for idle and routes, by the harness.
type xcell struct {
	Group  string
	Name   string
	Kind   string // client -kind: tls, grpc-unary, grpc-stream, ws
	TLS    string // "1.2" or "1.3"
	RSA    bool   // the RSA-2048 listener instead of the ECDSA P-256 one
	Resume bool   // session tickets: resumed handshakes
	Conns  int    // concurrent connections or calls
	Size   int    // body, payload or message bytes
	Stream int    // messages per server-streaming call
	Idle   int    // idle: connections held
	// Caption says what one operation is, printed under the cell's name.
	Caption string
}

// Concurrency of the client cells. Handshakes use 16 connections at a
// time: enough to keep one proxy CPU busy, few enough that a slow proxy is
// not measured by its accept queue.
const (
	tlsConns    = 16
	grpcCalls   = 64
	grpcStreams = 16
	streamLen   = 100
	wsConns     = 64
	routeConns  = 64
	// routeCount is the number of HTTPRoutes of the routes cell.
	routeCount = 10000
)

func tlsCell(ver string, rsa, resume bool) xcell {
	key, kind := "ecdsa", "full"
	if rsa {
		key = "rsa"
	}
	if resume {
		kind = "resumed"
	}
	c := xcell{Group: groupTLS, Name: fmt.Sprintf("tls%s %s %s", ver, key, kind), Kind: "tls", TLS: ver, RSA: rsa, Resume: resume, Conns: tlsConns, Size: 1 << 10}
	c.Caption = fmt.Sprintf("one op = new TCP connection + %s TLS %s handshake (%s certificate) + GET /1k + close, %d at a time; req/s = handshakes/s",
		kind, ver, map[bool]string{false: "ECDSA P-256", true: "RSA-2048"}[rsa], tlsConns)
	return c
}

// xcellsOf returns the cells of a group; quick keeps them all but the
// 50,000-connection idle cell, since each is short.
func xcellsOf(group string, quick bool) []xcell {
	switch group {
	case groupTLS:
		return []xcell{tlsCell("1.3", false, false), tlsCell("1.3", true, false), tlsCell("1.2", false, false),
			tlsCell("1.2", true, false), tlsCell("1.3", false, true), tlsCell("1.2", false, true)}
	case groupGRPC:
		return []xcell{
			{Group: group, Name: fmt.Sprintf("grpc unary c=%d 1k", grpcCalls), Kind: "grpc-unary", Conns: grpcCalls, Size: 1 << 10,
				Caption: fmt.Sprintf("one op = one unary call (1 KiB request, 1 KiB response) on one h2c connection, %d calls at a time", grpcCalls)},
			{Group: group, Name: fmt.Sprintf("grpc stream c=%d %dx1k", grpcStreams, streamLen), Kind: "grpc-stream", Conns: grpcStreams, Size: 1 << 10, Stream: streamLen,
				Caption: fmt.Sprintf("one op = one 1 KiB message of a server-streaming call of %d; p50/p99 are whole calls; %d calls at a time", streamLen, grpcStreams)},
		}
	case groupWS:
		return []xcell{{Group: group, Name: fmt.Sprintf("ws c=%d 1k", wsConns), Kind: "ws", Conns: wsConns, Size: 1 << 10,
			Caption: fmt.Sprintf("one op = one 1 KiB binary message to the echo backend and back, %d connections, one message in flight each", wsConns)}}
	case groupIdle:
		cs := []xcell{{Group: group, Name: "idle 10000 conns", Idle: 10000}}
		if !quick {
			cs = append(cs, xcell{Group: group, Name: "idle 50000 conns", Idle: 50000})
		}
		return cs
	case groupRoutes:
		return []xcell{{Group: group, Name: fmt.Sprintf("routes %d h1 c=%d", routeCount, routeConns), Conns: routeConns, Size: 1 << 10,
			Caption: fmt.Sprintf("HTTP/1.1 keep-alive through %d HTTPRoutes (bench/routegen: own and shared hostnames, exact, prefix, header and regex matches), requests spread over all routes", routeCount)}}
	}
	return nil
}

// clientArgv runs this binary's client for one cell against ct, pinned to
// the load CPU like wrk and h2load.
func clientArgv(self, cpu string, ct *contender, e *env, c xcell, d time.Duration) []string {
	addr := ct.GRPCAddr
	switch c.Kind {
	case "tls":
		addr = ct.TLSAddr
		if c.RSA {
			addr = ct.TLSRSAAddr
		}
	case "ws":
		addr = ct.WSAddr
	}
	argv := []string{"taskset", "-c", cpu, self, "client", "-kind", c.Kind, "-addr", addr,
		"-conns", fmt.Sprint(c.Conns), "-n", "10000000", "-d", d.String(), "-size", fmt.Sprint(c.Size)}
	switch c.Kind {
	case "tls":
		argv = append(argv, "-ca", e.certFile+","+e.rsaCert, "-tls", c.TLS)
		if c.Resume {
			argv = append(argv, "-resume")
		}
	case "grpc-stream":
		argv = append(argv, "-stream", fmt.Sprint(c.Stream))
	}
	return argv
}
