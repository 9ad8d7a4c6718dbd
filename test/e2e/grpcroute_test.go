package e2e

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// grpcBackend is a gRPC server that answers every method of every service:
// it replies with an empty message and response headers naming itself and
// the method it was called as, and echoes the request header x-tenant.
func grpcBackend(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.Method(stream.Context())
		md, _ := metadata.FromIncomingContext(stream.Context())
		var in emptypb.Empty
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		hdr := metadata.Pairs("backend", name, "method", method, "tenant", strings.Join(md.Get("x-tenant"), ","),
			"via", strings.Join(md.Get("x-via"), ","))
		if err := stream.SendHeader(hdr); err != nil {
			return err
		}
		return stream.SendMsg(&emptypb.Empty{})
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().(*net.TCPAddr).Port
}

// TestGRPCRoute serves GRPCRoutes through `rauta run -f` to grpc-go clients
// over h2c with prior knowledge: method matching (exact, service only,
// method only, regular expression) in GRPCRoute precedence, header matches,
// request header filters, backends without appProtocol reached over
// HTTP/2, Unimplemented for what no rule matches, and an HTTPRoute on
// another hostname of the same listener still serving HTTP/1.1.
func TestGRPCRoute(t *testing.T) {
	port := freePort(t)
	exact, service, method, regex, tenant := grpcBackend(t, "exact"), grpcBackend(t, "service"), grpcBackend(t, "method"), grpcBackend(t, "regex"), grpcBackend(t, "tenant")
	web := startBackend(t, "web")
	manifests := httpGateway(port) +
		serviceYAML("exact", exact) + serviceYAML("service", service) + serviceYAML("method", method) +
		serviceYAML("regex", regex) + serviceYAML("tenant", tenant) + servicesYAML(web) +
		kindRouteYAML("GRPCRoute", "echo", []string{"grpc.test"}, `  - matches:
    - method:
        service: demo.Echo
        method: Say
`+to("exact")+`  - matches:
    - method:
        service: demo.Echo
`+to("service")+`  - matches:
    - method:
        method: Ping
`+to("method")+`  - matches:
    - method:
        type: RegularExpression
        service: "admin\\..*"
        method: "Get.*"
`+to("regex")+`  - matches:
    - method:
        service: demo.Echo
        method: Say
      headers:
      - name: x-tenant
        value: blue
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: x-via
          value: rauta
`+to("tenant")) +
		routeYAML("web", []string{"web.test"}, catchAll("web"))
	startGateway(t, map[string]string{"all.yaml": manifests})

	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("grpc.test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	call := func(t *testing.T, fullMethod string, kv ...string) (metadata.MD, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if len(kv) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, kv...)
		}
		var hdr metadata.MD
		err := conn.Invoke(ctx, fullMethod, &emptypb.Empty{}, &emptypb.Empty{}, grpc.Header(&hdr))
		return hdr, err
	}
	for _, tc := range []struct {
		method  string
		headers []string
		backend string
	}{
		{"/demo.Echo/Say", nil, "exact"},
		{"/demo.Echo/Say", []string{"x-tenant", "blue"}, "tenant"},
		{"/demo.Echo/Say", []string{"x-tenant", "red"}, "exact"},
		{"/demo.Echo/Other", nil, "service"},
		// The service match has more characters than the method match.
		{"/demo.Echo/Ping", nil, "service"},
		{"/other.Svc/Ping", nil, "method"},
		{"/admin.Users/GetUser", nil, "regex"},
	} {
		t.Run(tc.method+strings.Join(tc.headers, "="), func(t *testing.T) {
			hdr, err := call(t, tc.method, tc.headers...)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if got := strings.Join(hdr.Get("backend"), ","); got != tc.backend {
				t.Fatalf("served by %q, want %q", got, tc.backend)
			}
			if got := strings.Join(hdr.Get("method"), ","); got != tc.method {
				t.Errorf("backend was called as %q, want %q", got, tc.method)
			}
			if tc.backend == "tenant" && strings.Join(hdr.Get("via"), ",") != "rauta" {
				t.Errorf("x-via at the backend %q, want rauta (RequestHeaderModifier)", hdr.Get("via"))
			}
		})
	}
	for _, m := range []string{"/admin.Users/DeleteUser", "/unknown.Svc/Say"} {
		t.Run(m+" unmatched", func(t *testing.T) {
			_, err := call(t, m)
			if status.Code(err) != codes.Unimplemented {
				t.Fatalf("call: %v; want Unimplemented (no route matches)", err)
			}
		})
	}
	t.Run("HTTPRoute on another hostname", func(t *testing.T) {
		res := get(t, newClient(), port, "web.test", "/page")
		if res.status != 200 || res.reply(t).Backend != "web" {
			t.Fatalf("status %d; want 200 from web", res.status)
		}
	})
}
