package ebpf

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// h2record is an exchange JSON line with the HTTP/2 fields.
type h2record struct {
	Type       string `json:"type"`
	Method     string `json:"method"`
	Target     string `json:"target"`
	Status     int    `json:"status"`
	Outcome    string `json:"outcome"`
	Version    string `json:"version"`
	GRPCStatus *int   `json:"grpc_status"`
	LatencyNS  int64  `json:"latency_ns"`
}

// h2records are the HTTP/2 exchange lines.
func (b *syncBuffer) h2records(t *testing.T) []h2record {
	t.Helper()
	var out []h2record
	for _, r := range jsonLines[h2record](t, b) {
		if r.Type == "exchange" && r.Version == "2" {
			out = append(out, r)
		}
	}
	return out
}

// serveH2c serves h in the server namespace over HTTP/1.1 and
// unencrypted HTTP/2 (prior knowledge), stopped when the test ends.
func serveH2c(t *testing.T, tp *topology, port int, h http.HandlerFunc) {
	t.Helper()
	ln := tp.listen(t, port)
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

// h2cClient speaks HTTP/2 with prior knowledge from the client
// namespace: one connection per server, many streams on it.
func h2cClient(t *testing.T, tp *topology) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), DialContext: tp.dial}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// h2Status is the status the h2c test server answers request id with.
func h2Status(id int) int { return []int{200, 201, 404, 500, 503}[id%5] }

// grpcEchoDesc registers methods Call0..Call16 on rauta.test.Echo; CallN
// answers with gRPC status N (0: the request echoed, with a message, so
// a response HEADERS, DATA and trailers; others: a trailers-only
// response).
func grpcEchoDesc() *grpc.ServiceDesc {
	d := &grpc.ServiceDesc{ServiceName: "rauta.test.Echo", HandlerType: (*any)(nil)}
	for code := 0; code <= 16; code++ {
		d.Methods = append(d.Methods, grpc.MethodDesc{
			MethodName: fmt.Sprintf("Call%d", code),
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.StringValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				if code == 0 {
					return wrapperspb.String(in.Value), nil
				}
				return nil, status.Error(codes.Code(code), "as asked")
			},
		})
	}
	return d
}

// TestH2cAndGRPCObserved: a real h2c server (net/http, unencrypted HTTP/2) and a real
// gRPC server, each called by a real client with many concurrent streams
// on one connection. The observer reports every stream once, with its
// exact method, path, status and gRPC status (0 mis-paired), as
// http.server.request.duration with network.protocol.version="2" and
// rpc.grpc.status_code; gRPC server errors carry their code name as
// error.type. Before, all of it was counted as non-HTTP segments.
func TestH2cAndGRPCObserved(t *testing.T) {
	for _, mode := range []string{"tcx", "clsact", "xdp"} {
		t.Run(mode, func(t *testing.T) { testH2cAndGRPC(t, mode) })
	}
}

func testH2cAndGRPC(t *testing.T, mode string) {
	tp := newTopology(t)
	obs := startObserver(t, tp, mode, nil)

	// h2c server: status by request id, a small body.
	serveH2c(t, tp, 8081, func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/h2/"))
		w.WriteHeader(h2Status(id))
		_, _ = fmt.Fprintf(w, "stream %d", id)
	})

	// gRPC server.
	gln := tp.listen(t, 8082)
	gsrv := grpc.NewServer()
	gsrv.RegisterService(grpcEchoDesc(), struct{}{})
	go func() { _ = gsrv.Serve(gln) }()
	t.Cleanup(gsrv.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// h2c client with prior knowledge: one connection, many streams.
	hc := h2cClient(t, tp)
	const h2Requests = 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	clientStatus := map[int]int{}
	sem := make(chan struct{}, 100) // up to 100 streams at once (the server allows 250)
	for id := range h2Requests {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := hc.Get(fmt.Sprintf("http://%s:8081/h2/%d", tp.serverIP, id))
			if err != nil {
				t.Errorf("h2c request %d: %v", id, err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			mu.Lock()
			clientStatus[id] = res.StatusCode
			mu.Unlock()
		}()
	}

	// gRPC client: one ClientConn (one HTTP/2 connection).
	cc, err := grpc.NewClient("passthrough:///"+net.JoinHostPort(tp.serverIP, "8082"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return tp.dial(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	const perCode = 8
	// Up to 16 calls at once: a burst of ~100 small calls puts more
	// than 128 frames in one segment, past what the kernel walks
	// (H2_MAX_WALK; docs/observer.md), which this test is not about.
	gsem := make(chan struct{}, 16)
	for i := range 17 * perCode {
		code := i % 17
		wg.Add(1)
		gsem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-gsem }()
			out := new(wrapperspb.StringValue)
			err := cc.Invoke(ctx, fmt.Sprintf("/rauta.test.Echo/Call%d", code), wrapperspb.String(strconv.Itoa(i)), out)
			if got := status.Code(err); int(got) != code {
				t.Errorf("gRPC call %d: client got %v, want code %d", i, got, code)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	want := h2Requests + 17*perCode
	var recs []h2record
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs = obs.out.h2records(t)
		if len(recs) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[string]int{}
	grpcByCode := map[int]int{}
	misPaired := 0
	for _, r := range recs {
		seen[r.Target]++
		if r.Outcome != "complete" {
			t.Errorf("%s: outcome %s", r.Target, r.Outcome)
			continue
		}
		if id, ok := strings.CutPrefix(r.Target, "/h2/"); ok {
			n, _ := strconv.Atoi(id)
			if r.Method != "GET" || r.Status != clientStatus[n] || r.Status != h2Status(n) || r.GRPCStatus != nil {
				t.Errorf("%s: observed %s %d grpc %v, client got %d", r.Target, r.Method, r.Status, r.GRPCStatus, clientStatus[n])
				misPaired++
			}
			continue
		}
		code, err := strconv.Atoi(strings.TrimPrefix(r.Target, "/rauta.test.Echo/Call"))
		if err != nil || r.Method != "POST" || r.Status != 200 || r.GRPCStatus == nil || *r.GRPCStatus != code {
			t.Errorf("%s: observed %s %d grpc %v", r.Target, r.Method, r.Status, r.GRPCStatus)
			misPaired++
			continue
		}
		grpcByCode[code]++
	}
	for id := range h2Requests {
		if n := seen[fmt.Sprintf("/h2/%d", id)]; n != 1 {
			t.Errorf("/h2/%d observed %d times, want once", id, n)
		}
	}
	for code := range 17 {
		if grpcByCode[code] != perCode {
			t.Errorf("Call%d observed %d times with its status, want %d", code, grpcByCode[code], perCode)
		}
	}
	t.Logf("%d HTTP/2 exchanges observed of %d sent, %d mis-paired", len(recs), want, misPaired)
	if len(recs) != want {
		t.Errorf("observed %d HTTP/2 exchanges, sent %d", len(recs), want)
	}

	// Counters are published at the pipeline's next tick (250 ms).
	for end := time.Now().Add(5 * time.Second); obs.metric(t, "rauta_observer_h2_connections_total", "") < 2 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := obs.metric(t, "http_server_request_duration_seconds_count", `network_protocol_version="2"`); int(n) != want {
		t.Errorf("duration count with network_protocol_version=2: %v, want %d", n, want)
	}
	if n := obs.metric(t, "http_server_request_duration_seconds_count", `error_type="INTERNAL"`); n != perCode {
		t.Errorf("error_type=INTERNAL count %v, want %d", n, perCode)
	}
	if n := obs.metric(t, "http_server_request_duration_seconds_count", `rpc_grpc_status_code="5"`); n != perCode {
		t.Errorf("rpc_grpc_status_code=5 count %v, want %d", n, perCode)
	}
	if n := obs.metric(t, "http_server_request_duration_seconds_count", `error_type="503"`); int(n) != h2Requests/5 {
		t.Errorf("error_type=503 count %v, want %d", n, h2Requests/5)
	}
	// At least one per server (net/http's transport may dial a second
	// one while the first is being set up under 100 requests at once).
	if n := obs.metric(t, "rauta_observer_h2_connections_total", ""); n < 2 {
		t.Errorf("h2 connections %v, want at least 2", n)
	}
	for _, m := range []string{"rauta_observer_h2_desyncs_total", "rauta_observer_h2_dropped_streams_total", "rauta_observer_ringbuf_dropped_total"} {
		if n := obs.metric(t, m, ""); n != 0 {
			t.Errorf("%s = %v, want 0", m, n)
		}
	}
	if t.Failed() {
		for _, reason := range []string{"gap", "truncated", "protocol", "hpack", "limit"} {
			t.Logf("desyncs %s: %v", reason, obs.metric(t, "rauta_observer_h2_desyncs_total", `reason="`+reason+`"`))
		}
	}
}
