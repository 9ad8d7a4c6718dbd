package pair

import "testing"

// TestServerErrorMapping pins which exchanges count as the server's
// failures (error_type, the error-spike detector, span status).
func TestServerErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		ex   Exchange
		want bool
	}{
		{Exchange{Status: 200}, false},
		{Exchange{Status: 404}, false},
		{Exchange{Status: 503}, true},
		{Exchange{Status: 0, Outcome: Reset}, false}, // judged by its outcome
		{Exchange{Status: 200, GRPC: true, GRPCStatus: GRPCOK}, false},
		{Exchange{Status: 200, GRPC: true, GRPCStatus: 1}, false},  // CANCELLED: the caller
		{Exchange{Status: 200, GRPC: true, GRPCStatus: 5}, false},  // NOT_FOUND
		{Exchange{Status: 200, GRPC: true, GRPCStatus: 12}, false}, // UNIMPLEMENTED
		{Exchange{Status: 200, GRPC: true, GRPCStatus: 16}, false}, // UNAUTHENTICATED
		{Exchange{Status: 200, GRPC: true, GRPCStatus: GRPCUnknown}, true},
		{Exchange{Status: 200, GRPC: true, GRPCStatus: GRPCDeadlineExceeded}, true},
		{Exchange{Status: 200, GRPC: true, GRPCStatus: GRPCInternal}, true},
		{Exchange{Status: 200, GRPC: true, GRPCStatus: GRPCUnavailable}, true},
		{Exchange{Status: 200, GRPC: true, GRPCStatus: GRPCDataLoss}, true},
		{Exchange{Status: 200, GRPCStatus: GRPCUnavailable}, false}, // not gRPC: the field means nothing
	} {
		if got := tc.ex.ServerError(); got != tc.want {
			t.Errorf("%+v: ServerError %v, want %v", tc.ex, got, tc.want)
		}
	}
}
