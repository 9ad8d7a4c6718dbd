package main

// The "backend" subcommand: the Go backends of the gRPC and WebSocket
// cells, one process pinned to the load CPU next to the nginx backend. It
// serves grpc-go's interop TestService over h2c and a WebSocket echo.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

func runBackend(args []string) int {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	grpcAddr := fs.String("grpc", "", "address of the gRPC (h2c) TestService")
	wsAddr := fs.String("ws", "", "address of the WebSocket echo (path /ws)")
	if err := fs.Parse(args); err != nil || *grpcAddr == "" || *wsAddr == "" {
		fmt.Fprintln(os.Stderr, "proxybench backend: -grpc and -ws are required")
		return 2
	}
	gl, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench backend:", err)
		return 1
	}
	wl, err := net.Listen("tcp", *wsAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench backend:", err)
		return 1
	}
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, testService{})
	go func() { _ = gs.Serve(gl) }()
	mux := http.NewServeMux()
	up := &websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { wsEcho(up, w, r) })
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(wl) }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	gs.Stop()
	_ = hs.Close()
	return 0
}

// testService answers with payloads of the requested sizes and nothing
// else (interop.NewTestServer also checks metadata and compression).
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) UnaryCall(_ context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

func (testService) StreamingOutputCall(in *testgrpc.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range in.GetResponseParameters() {
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

// wsEcho sends every message back as it came.
func wsEcho(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request) {
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		t, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(t, msg); err != nil {
			return
		}
	}
}
