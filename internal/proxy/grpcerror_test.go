package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/false-systems/rauta/internal/ir"
)

// TestGRPCErrorsAreGRPCStatuses: what the gateway answers itself to a gRPC
// call (no route, a backend that refuses, a route without backends) reaches
// a grpc-go client as the gRPC status standing for it, over h2c and h2,
// while the access log keeps the HTTP status.
func TestGRPCErrorsAreGRPCStatuses(t *testing.T) {
	installGRPCLogger()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	_ = ln.Close() // nothing listens there: connections are refused
	dead := ir.Backend{Name: "default/dead:80", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, deadAddr)}}
	invalid := ir.Backend{Name: "default/missing:80", Weight: 1, Invalid: true}
	routes := func() ir.VirtualHost {
		return catchAll(prefixRoute("dead", "/dead.Svc", dead), prefixRoute("invalid", "/invalid.Svc", invalid))
	}
	cert := newTestCert(t, "grpc", []string{"grpc.test"}, "")
	access := &syncBuffer{}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("h2c", routes()),
		httpsListener("h2", []ir.Certificate{cert.ir}, routes()),
	}}, Options{AccessLog: access})
	pool := x509.NewCertPool()
	pool.AddCert(cert.x509)
	for _, l := range []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"h2c", insecure.NewCredentials()},
		{"h2", credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "grpc.test", MinVersion: tls.VersionTLS12})},
	} {
		t.Run(l.name, func(t *testing.T) {
			cc, err := grpc.NewClient("passthrough:///"+p.Addr(l.name).String(), grpc.WithTransportCredentials(l.creds), grpc.WithAuthority("grpc.test"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cc.Close() })
			// grpc-go maps a bare HTTP 404/502/500 to these codes too, but
			// with a message about an unexpected HTTP status and content
			// type: the gateway's own message shows a gRPC status came.
			for _, tc := range []struct {
				method string
				code   codes.Code
				msg    string
				log    string
			}{
				{"/nowhere.Svc/Call", codes.Unimplemented, "no route", `"status":404`},
				{"/dead.Svc/Call", codes.Unavailable, "backend unavailable", `"status":502`},
				{"/invalid.Svc/Call", codes.Unknown, "backend default/missing:80 is invalid", `"status":500`},
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				before := len(access.Bytes())
				err := cc.Invoke(ctx, tc.method, &emptypb.Empty{}, &emptypb.Empty{})
				cancel()
				st, _ := status.FromError(err)
				if st.Code() != tc.code || st.Message() != tc.msg {
					t.Errorf("%s: %v; want %s %q", tc.method, err, tc.code, tc.msg)
				}
				p.flushAccessLog()
				if entry := access.Bytes()[before:]; !bytes.Contains(entry, []byte(tc.log)) {
					t.Errorf("%s: access log %s; want %s", tc.method, entry, tc.log)
				}
			}
		})
	}
}

func TestGRPCCodeFor(t *testing.T) {
	for status, want := range map[int]codes.Code{
		400: codes.Internal, 401: codes.Unauthenticated, 403: codes.PermissionDenied, 404: codes.Unimplemented,
		408: codes.DeadlineExceeded, 504: codes.DeadlineExceeded, 431: codes.ResourceExhausted,
		429: codes.Unavailable, 502: codes.Unavailable, 503: codes.Unavailable, 500: codes.Unknown, 414: codes.Unknown,
	} {
		if got := codes.Code(grpcCodeFor(status)); got != want {
			t.Errorf("HTTP %d -> %s, want %s", status, got, want)
		}
	}
}

func TestIsGRPC(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "application/grpc;charset=utf-8": true,
		"application/grpc-web": false, "application/grpcx": false, "text/plain": false, "": false,
	} {
		r := &http.Request{Header: http.Header{"Content-Type": {ct}}}
		if isGRPC(r) != want {
			t.Errorf("isGRPC(%q) = %v", ct, !want)
		}
	}
}

// TestGRPCTimeoutBoundsTheCall: a call's grpc-timeout bounds it at the
// gateway: a backend that never answers is cancelled and the client, which
// sets no deadline of its own here, gets DEADLINE_EXCEEDED from the gateway.
func TestGRPCTimeoutBoundsTheCall(t *testing.T) {
	installGRPCLogger()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancelled := make(chan struct{}, 1)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		select {
		case <-stream.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(30 * time.Second):
		}
		return stream.Context().Err()
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	backend := ir.Backend{Name: "default/hang:80", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, ln.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("h2c", catchAll(prefixRoute("r", "/", backend)))}}, Options{})

	req := mustReq(t, "POST", p.url(t, "h2c")+"/hang.Svc/Call", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Grpc-Timeout", "200m")
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Trailer.Get("Grpc-Status"); got != "4" || resp.Trailer.Get("Grpc-Message") != "backend timed out" {
		t.Fatalf("status %d, trailers %v; want grpc-status 4 (DEADLINE_EXCEEDED) from the gateway", resp.StatusCode, resp.Trailer)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's call was not cancelled")
	}
}

func TestGRPCTimeoutParse(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"1H": time.Hour, "2M": 2 * time.Minute, "3S": 3 * time.Second, "100m": 100 * time.Millisecond,
		"5u": 5 * time.Microsecond, "7n": 7, "99999999S": 99999999 * time.Second,
		"": -1, "S": -1, "10": -1, "10x": -1, "123456789S": -1, "-1S": -1, "99999999H": -1,
	} {
		got, ok := grpcTimeout(&http.Request{Header: http.Header{"Grpc-Timeout": {v}}})
		if (want < 0 && ok) || (want >= 0 && (!ok || got != want)) {
			t.Errorf("grpc-timeout %q: %v %v, want %v", v, got, ok, want)
		}
	}
}
