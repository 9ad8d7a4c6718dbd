package ebpf

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 16 defects 1 and 2, on real traffic: every request carries its id
// in its target ("/id/<n>") and the server answers with status 400+n, so a
// mis-paired exchange is one whose status is not its target's (no status
// from 400 to 499 goes without a body, which keeps lengths honest).

// batchServer answers HTTP/1.1 requests on ln by hand, so that the test
// decides how responses are cut into segments: batch requests are read
// before answering, and all their responses go out in one write (one
// segment). A HEAD is answered with Content-Length 1000 and no body; with
// chunked, the first response of each batch is chunked with a body of
// chunkedBody bytes.
type batchServer struct {
	batch       int
	chunked     bool
	chunkedBody int
}

func (s batchServer) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.conn(c)
	}
}

func (s batchServer) conn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var out strings.Builder
		for i := range s.batch {
			method, target, err := readHead(br)
			if err != nil {
				return
			}
			target, _, _ = strings.Cut(target, "?")
			id, _ := strconv.Atoi(strings.TrimPrefix(target, "/id/"))
			status := 400 + id%100
			switch {
			case method == "HEAD":
				fmt.Fprintf(&out, "HTTP/1.1 %d X\r\nContent-Length: 1000\r\n\r\n", status)
			case s.chunked && i == 0:
				body := strings.Repeat("c", s.chunkedBody)
				fmt.Fprintf(&out, "HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", status, len(body), body)
			default:
				fmt.Fprintf(&out, "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", status)
			}
		}
		if _, err := io.WriteString(c, out.String()); err != nil {
			return
		}
	}
}

// readHead reads one request head (no bodies in these tests).
func readHead(br *bufio.Reader) (method, target string, err error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		return "", "", fmt.Errorf("bad request line %q", line)
	}
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		if h == "\r\n" {
			return f[0], f[1], nil
		}
	}
}

// request is a ~size-byte request head with id n.
func request(method string, n, size int) string {
	head := fmt.Sprintf("%s /id/%d HTTP/1.1\r\nHost: x\r\nX-Pad: ", method, n)
	pad := max(size-len(head)-4, 1)
	return head + strings.Repeat("p", pad) + "\r\n\r\n"
}

// exchangeRounds writes rounds batches of requests (methods[i] for the
// i-th of each batch, all in one write) on one keep-alive connection and
// reads every response before the next batch.
func exchangeRounds(t *testing.T, tp *topology, addr string, rounds int, methods []string, size int) int {
	t.Helper()
	conn, err := tp.dial(context.Background(), "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	id := 0
	for range rounds {
		var batch strings.Builder
		var sent []*http.Request
		for _, m := range methods {
			batch.WriteString(request(m, id, size))
			sent = append(sent, &http.Request{Method: m})
			id++
		}
		if _, err := io.WriteString(conn, batch.String()); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for _, rq := range sent {
			res, err := http.ReadResponse(br, rq)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	return id
}

// misPairedOf counts exchanges whose status is not their request's.
func misPairedOf(recs []record) (bad int, list []string) {
	for _, r := range exchanges(recs) {
		target, _, _ := strings.Cut(r.Target, "?")
		id, err := strconv.Atoi(strings.TrimPrefix(target, "/id/"))
		if err != nil || r.Outcome != "complete" || r.Status != 400+id%100 {
			bad++
			list = append(list, fmt.Sprintf("%s->%d(%s)", r.Target, r.Status, r.Outcome))
		}
	}
	return bad, list
}

// TestPipelinedEightInOneSegment (defect 2): eight ~200-byte requests in
// one segment, answered one segment per response. The kernel copied the
// first 512 bytes of a segment, so only the first two were ever seen (75%
// lost at depth 8); now every one is seen and paired.
func TestPipelinedEightInOneSegment(t *testing.T) {
	tp := newTopology(t)
	ln := tp.listen(t, 8080)
	go batchServer{batch: 1}.serve(ln)
	obs := startObserver(t, tp, "tc", nil)

	methods := make([]string, 8)
	for i := range methods {
		methods[i] = "GET"
	}
	const rounds = 5
	sent := exchangeRounds(t, tp, ln.Addr().String(), rounds, methods, 200)
	recs := obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= sent })
	bad, list := misPairedOf(recs)
	if got := len(exchanges(recs)); got != sent || bad != 0 {
		t.Fatalf("observed %d of %d exchanges, %d mis-paired %v", got, sent, bad, list)
	}
	if n := obs.metric(t, "rauta_observer_truncated_targets_total", ""); n != 0 {
		t.Errorf("%v truncated targets, want 0", n)
	}
}

// TestLostResponseNeverMisPairs (defect 1): the server answers pairs of
// pipelined requests in one segment.
//
//   - HEAD then GET: the HEAD response announces 1000 bytes it does not
//     send. Read as having a body, it hid the GET's response, and pairing
//     in order then gave every later request the previous one's status.
//     The pairer knows the HEAD, so both are found and paired.
//   - A chunked response, then another: when the chunked body was
//     captured whole its length is known and both pair. When it goes
//     beyond the capture window the second cannot be found. Sequence and acknowledgment
//     numbers then cannot always tell which request the next response
//     answers; those exchanges are dropped and counted, none is reported
//     with another request's status.
func TestLostResponseNeverMisPairs(t *testing.T) {
	tp := newTopology(t)
	obs := startObserver(t, tp, "tc", nil)

	ln := tp.listen(t, 8080)
	go batchServer{batch: 2}.serve(ln)
	const rounds = 20
	sent := exchangeRounds(t, tp, ln.Addr().String(), rounds, []string{"HEAD", "GET"}, 100)
	recs := obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= sent })
	bad, list := misPairedOf(recs)
	if got := len(exchanges(recs)); got != sent || bad != 0 {
		t.Fatalf("HEAD+GET: observed %d of %d exchanges, %d mis-paired %v", got, sent, bad, list)
	}

	// A chunked response captured whole: its length is known, and the
	// response after it in the segment is found.
	ln2 := tp.listen(t, 8081)
	go batchServer{batch: 2, chunked: true, chunkedBody: 100}.serve(ln2)
	sent2 := exchangeRounds(t, tp, ln2.Addr().String(), rounds, []string{"GET", "GET"}, 100)
	recs = obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= sent+sent2 })
	bad, list = misPairedOf(recs)
	if got := len(exchanges(recs)); got != sent+sent2 || bad != 0 {
		t.Fatalf("small chunked: observed %d of %d exchanges, %d mis-paired %v", got-sent, sent2, bad, list)
	}
	sent += sent2

	ln3 := tp.listen(t, 8082)
	go batchServer{batch: 2, chunked: true, chunkedBody: 6000}.serve(ln3)
	sent2 = exchangeRounds(t, tp, ln3.Addr().String(), rounds, []string{"GET", "GET"}, 100)
	var recs2 []record
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs2 = exchanges(obs.out.records(t))[sent:]
		unpaired := obs.metric(t, "rauta_observer_unpaired_requests_total", "")
		// The last request may still be pending: only a later response
		// decides about it (or the request timeout).
		if float64(len(recs2))+unpaired >= float64(sent2-1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	bad, list = misPairedOf(recs2)
	unpaired := obs.metric(t, "rauta_observer_unpaired_requests_total", "")
	ambiguous := obs.metric(t, "rauta_observer_ambiguous_responses_total", "")
	t.Logf("chunked beyond the window: %d of %d exchanges paired, %v unpaired, %v ambiguous responses", len(recs2), sent2, unpaired, ambiguous)
	if bad != 0 {
		t.Fatalf("chunked: %d mis-paired %v", bad, list)
	}
	if n := float64(len(recs2)) + unpaired; n != float64(sent2) && n != float64(sent2-1) {
		t.Errorf("chunked: %d exchanges + %v unpaired, want %d (or %d) requests accounted for", len(recs2), unpaired, sent2, sent2-1)
	}
	if len(recs2) == 0 || unpaired == 0 {
		t.Errorf("chunked: %d exchanges, %v unpaired: the test no longer loses responses", len(recs2), unpaired)
	}
}

// TestTruncatedTargetIsFlagged (defect 2): a request line longer than the
// capture window is reported with the part that was captured and the
// flag, and counted.
func TestTruncatedTargetIsFlagged(t *testing.T) {
	tp := newTopology(t)
	ln := tp.listen(t, 8080)
	go batchServer{batch: 1}.serve(ln)
	obs := startObserver(t, tp, "tc", nil)

	conn, err := tp.dial(context.Background(), "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	long := "GET /id/7?q=" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(conn, long); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	recs := obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= 1 })
	ex := exchanges(recs)
	if len(ex) != 1 || !ex[0].TargetTruncated || !strings.HasPrefix(ex[0].Target, "/id/7?q=aaa") || ex[0].Status != 407 {
		t.Fatalf("exchanges %+v", ex)
	}
	// Counters are published on the pipeline's tick.
	deadline := time.Now().Add(5 * time.Second)
	for obs.metric(t, "rauta_observer_truncated_targets_total", "") < 1 && time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
	}
	if n := obs.metric(t, "rauta_observer_truncated_targets_total", ""); n != 1 {
		t.Errorf("truncated targets %v, want 1", n)
	}
}
