package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// logServer is the kubelet-like endpoint the API server calls for `kubectl logs`:
// GET /containerLogs/{namespace}/{pod}/{container}, and for `kubectl exec` (exec.go). It accepts only client certificates
// signed by the cluster CA with the system:masters group (the API server's kubelet client).
type logServer struct {
	srv      *http.Server
	listener net.Listener
	stateDir string
	getPod   func(namespace, name string) (*corev1.Pod, bool)
}

func newLogServer(certPEM, keyPEM, caPEM []byte, stateDir string, getPod func(string, string) (*corev1.Pod, bool), execs *execServer) (*logServer, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("log server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("log server client ca: no certificate in PEM")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("log server listen: %w", err)
	}
	s := &logServer{listener: l, stateDir: stateDir, getPod: getPod}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	mux.HandleFunc("GET /exec/{namespace}/{pod}/{container}", execs.serve)
	mux.HandleFunc("POST /exec/{namespace}/{pod}/{container}", execs.serve)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	s.srv = &http.Server{
		Handler:           requireMasters(mux),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
	}
	return s, nil
}

func (s *logServer) port() int { return s.listener.Addr().(*net.TCPAddr).Port }

func (s *logServer) serve() error {
	err := s.srv.ServeTLS(s.listener, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *logServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func requireMasters(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || !slices.Contains(r.TLS.PeerCertificates[0].Subject.Organization, "system:masters") {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logQuery holds the supported options of the kubelet's containerLogs endpoint.
type logQuery struct {
	follow     bool
	tailLines  int64 // -1: all
	limitBytes int64 // 0: no limit
}

func parseLogQuery(q map[string][]string) (logQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	lq := logQuery{tailLines: -1}
	if v := get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return logQuery{}, fmt.Errorf("follow %q: not a boolean", v)
		}
		lq.follow = b
	}
	if v := get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return logQuery{}, fmt.Errorf("tailLines %q: not a non-negative integer", v)
		}
		lq.tailLines = n
	}
	if v := get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return logQuery{}, fmt.Errorf("limitBytes %q: not a positive integer", v)
		}
		lq.limitBytes = n
	}
	if v := get("previous"); v == "true" {
		return logQuery{}, fmt.Errorf("previous: logs of earlier runs are appended to one file on the devcluster node")
	}
	return lq, nil
}

func (s *logServer) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, cname := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	lq, err := parseLogQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, ok := podContainer(w, s.getPod, ns, name, cname)
	if !ok {
		return
	}
	f, err := os.Open(containerLogPath(s.stateDir, pod, cname))
	if err != nil {
		http.Error(w, fmt.Sprintf("container %q of pod %s/%s has no logs yet", cname, ns, name), http.StatusNotFound)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var out io.Writer = w
	if lq.limitBytes > 0 {
		out = &limitWriter{w: w, left: lq.limitBytes}
	}
	if err := copyTail(out, f, lq.tailLines); err != nil {
		return
	}
	if !lq.follow {
		return
	}
	followFile(r.Context(), out, w, f)
}

// podContainer finds a pod of this node that has the named container; when there is none
// it answers 404 and returns false.
func podContainer(w http.ResponseWriter, getPod func(string, string) (*corev1.Pod, bool), ns, name, cname string) (*corev1.Pod, bool) {
	pod, ok := getPod(ns, name)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on this node", ns, name), http.StatusNotFound)
		return nil, false
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == cname {
			return pod, true
		}
	}
	http.Error(w, fmt.Sprintf("container %q not found in pod %s/%s", cname, ns, name), http.StatusNotFound)
	return nil, false
}

// copyTail writes the last n lines of f (all for n < 0) and leaves f at its end.
func copyTail(out io.Writer, f *os.File, n int64) error {
	if n < 0 {
		_, err := io.Copy(out, f)
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	_, err = out.Write(tailLines(data, n))
	return err
}

// tailLines returns the last n lines of data; a final line without newline counts.
func tailLines(data []byte, n int64) []byte {
	if n == 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	var seen int64
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			seen++
			if seen == n {
				return data[i+1:]
			}
		}
	}
	return data
}

// followFile streams what is appended to f until the client goes away. The log file is
// written by the container directly, so polling is the simplest reliable way to see it.
func followFile(ctx context.Context, out io.Writer, w http.ResponseWriter, f *os.File) {
	flusher, _ := w.(http.Flusher)
	reader := bufio.NewReader(f)
	buf := make([]byte, 32<<10)
	for {
		n, err := reader.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// limitWriter fails once limit bytes were written, ending the response.
type limitWriter struct {
	w    io.Writer
	left int64
}

var errLimit = errors.New("limitBytes reached")

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errLimit
	}
	if int64(len(p)) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left -= int64(n)
		if err == nil {
			err = errLimit
		}
		return n, err
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
