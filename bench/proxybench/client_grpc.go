package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// grpcWorker makes gRPC calls of grpc-go's interop TestService over one
// h2c connection, o.conns calls at a time (like h2load -c1 -m64). A unary
// call is one operation; a server-streaming call counts each of its
// o.stream messages, and its latency is that of the whole call.
type grpcWorker struct {
	cc     *grpc.ClientConn
	client testgrpc.TestServiceClient
	stream bool
	size   int
	n      int
}

func newGRPCWorker(o clientOptions) (*grpcWorker, error) {
	cc, err := grpc.NewClient("passthrough:///"+o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &grpcWorker{cc: cc, client: testgrpc.NewTestServiceClient(cc), stream: o.kind == "grpc-stream", size: o.size, n: o.stream}, nil
}

func (w *grpcWorker) close() { w.cc.Close() }

func (w *grpcWorker) do(ctx context.Context, _ int) (op, error) {
	if !w.stream {
		resp, err := w.client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: int32(w.size),
			Payload: &testgrpc.Payload{Body: make([]byte, w.size)}})
		if err != nil {
			return op{}, err
		}
		if got := len(resp.GetPayload().GetBody()); got != w.size {
			return op{}, fmt.Errorf("unary: %d payload bytes, want %d", got, w.size)
		}
		return op{ops: 1, bytes: uint64(w.size)}, nil
	}
	params := make([]*testgrpc.ResponseParameters, w.n)
	for i := range params {
		params[i] = &testgrpc.ResponseParameters{Size: int32(w.size)}
	}
	st, err := w.client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		return op{}, err
	}
	var r op
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return op{}, err
		}
		if got := len(msg.GetPayload().GetBody()); got != w.size {
			return op{}, fmt.Errorf("stream: %d payload bytes, want %d", got, w.size)
		}
		r.ops++
		r.bytes += uint64(w.size)
	}
	if r.ops != uint64(w.n) {
		return op{}, fmt.Errorf("stream: %d messages, want %d", r.ops, w.n)
	}
	return r, nil
}
