package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"
)

// maxBody bounds the response size the server makes.
const maxBody = 1 << 20

// runServer is the "server" role, the application in the server pod:
// GET /?size=N answers N bytes and, in X-Peer, the address the connection
// came from (the client pod, the mesh proxy or the inbound sidecar), which
// the client checks to know the path is the one it measures.
func runServer(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("server: want <listen addr>, got %q", args)
	}
	body := make([]byte, maxBody)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	srv := &http.Server{
		Addr:              args[0],
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := strconv.Atoi(r.URL.Query().Get("size"))
			if err != nil || n < 0 || n > maxBody {
				http.Error(w, "size: 0 to 1 MiB", http.StatusBadRequest)
				return
			}
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			w.Header().Set("X-Peer", host)
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, _ = w.Write(body[:n])
		}),
	}
	return srv.ListenAndServe()
}

// clientResult is what the client role reports of its timed requests.
type clientResult struct {
	Requests int           `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Err      string        `json:"error,omitempty"`
}

// runClient is the "client" role, the application in the client pod. It
// sends warm-up requests until the server reports the expected peer (the
// path is set up: the agent's maps written, or the sidecars up; bounded by
// -ready-timeout), writes "ready", waits for a line on stdin (the parent
// snapshots the CPU counters meanwhile), then sends -requests GETs one
// after the other (bounded by -timeout), and writes the result as JSON.
func runClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	url := fs.String("url", "", "http://host:port")
	size := fs.Int("size", 1024, "response bytes")
	newConn := fs.Bool("new-conn", false, "a new connection per request")
	warmup := fs.Int("warmup", 100, "untimed requests first")
	requests := fs.Int("requests", 2000, "timed requests")
	timeout := fs.Duration("timeout", 30*time.Second, "the timed requests end after this")
	readyTimeout := fs.Duration("ready-timeout", 30*time.Second, "wait for the expected peer at most this long")
	peer := fs.String("peer", "", "the address the server must see")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tr := &http.Transport{DisableKeepAlives: *newConn, MaxIdleConnsPerHost: 1, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	target := fmt.Sprintf("%s/?size=%d", *url, *size)
	get := func() (string, error) {
		resp, err := cl.Get(target)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return "", fmt.Errorf("status %d, %d bytes of %d: %w", resp.StatusCode, n, *size, err)
		}
		if resp.StatusCode != http.StatusOK || n != int64(*size) {
			return "", fmt.Errorf("status %d, %d bytes of %d", resp.StatusCode, n, *size)
		}
		return resp.Header.Get("X-Peer"), nil
	}
	// Ready: the expected peer answered, then the warm-up requests.
	deadline := time.Now().Add(*readyTimeout)
	for {
		got, err := get()
		if err == nil && got == *peer {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("path not ready within %v: %w", *readyTimeout, err)
			}
			return fmt.Errorf("path not ready within %v: peer %q, want %q", *readyTimeout, got, *peer)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range *warmup {
		got, err := get()
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if got != *peer {
			return fmt.Errorf("warm-up: peer %q, want %q", got, *peer)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(map[string]bool{"ready": true}); err != nil {
		return err
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	lat := make([]time.Duration, 0, *requests)
	var res clientResult
	start := time.Now()
	end := start.Add(*timeout)
	for range *requests {
		t0 := time.Now()
		got, err := get()
		if err == nil && got != *peer {
			err = fmt.Errorf("peer %q, want %q", got, *peer)
		}
		if err != nil {
			res.Err = err.Error()
			break
		}
		lat = append(lat, time.Since(t0))
		if t0.After(end) {
			break
		}
	}
	res.Elapsed = time.Since(start)
	res.Requests = len(lat)
	if len(lat) == 0 && res.Err == "" {
		res.Err = errors.New("no request done").Error()
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return enc.Encode(res)
}
