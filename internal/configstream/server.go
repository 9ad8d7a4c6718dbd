package configstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Identity is who a data plane's token says it is.
type Identity struct {
	Namespace      string
	ServiceAccount string
	// Pod is the pod the token is bound to, when the token says.
	Pod string
}

// Authenticator checks a bearer token. ErrUnauthenticated (wrapped) means the
// token is not valid; other errors are faults (the API server is away).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// ErrUnauthenticated is returned by Authenticators for tokens that are not valid.
var ErrUnauthenticated = errors.New("unauthenticated")

// Server is the controller's side: it holds the newest Config of every
// Gateway, streams it to the data planes allowed to see it, and collects
// their Reports.
type Server struct {
	// Auth checks tokens; Authorize says whether an identity may receive a
	// Gateway's configuration (its key material included).
	Auth      Authenticator
	Authorize func(id Identity, gateway string) bool
	// OnChange is called (without locks held) when a pod connects,
	// disconnects or reports, so the caller can recompute status.
	OnChange func()
	// Heartbeat is the longest silence on a stream; 0 means 10 s. Clients
	// treat three missed heartbeats as a dead stream.
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a data plane that stopped reading;
	// 0 means 30 s.
	WriteTimeout time.Duration
	// MaxStreams bounds concurrent streams; 0 means 4096.
	MaxStreams int

	mu     sync.Mutex
	topics map[string]*topic
	// added is closed (and replaced) when a Publish adds a Gateway, waking
	// streams that wait for their Gateway's first Config.
	added    chan struct{}
	pods     map[string]map[string]*PodState // gateway -> pod -> state
	streams  int
	nextConn uint64
	// deltasSent counts Configs sent as deltas (tests read it).
	deltasSent atomic.Uint64
}

// topic is the newest Config of one Gateway, encoded once for every stream.
type topic struct {
	cfg Config
	// delta carries cfg to a stream that sent base last (deltaFrame); nil
	// when there is none.
	base  string
	delta []byte
	// changed is closed when cfg is replaced or the Gateway goes; streams
	// then look the Gateway up again.
	changed chan struct{}
}

// PodState is what the controller knows of one data-plane pod.
type PodState struct {
	Pod       string
	Connected bool
	// Report is the pod's last report; its Version says which Config it
	// describes.
	Report Report
	// conn identifies the stream, so an old stream ending does not mark a
	// reconnected pod as gone.
	conn uint64
}

// Publish makes configs (by Gateway "namespace/name") the current set.
// Streams of changed Gateways get the new Config; streams of Gateways not in
// the set end. An unchanged Config (same Version) sends nothing.
func (s *Server) Publish(configs map[string]Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics == nil {
		s.topics = map[string]*topic{}
	}
	if s.added == nil {
		s.added = make(chan struct{})
	}
	grew := false
	for gw, t := range s.topics {
		if _, ok := configs[gw]; !ok {
			close(t.changed)
			delete(s.topics, gw)
		}
	}
	for gw, cfg := range configs {
		t := s.topics[gw]
		if t != nil && t.cfg.Version == cfg.Version {
			continue
		}
		if cfg.frame == nil {
			// Not from NewConfig: encode it here.
			cfg.frame = &lazyFrame{frame: encodeFrame(message{Config: &cfg})}
		}
		next := &topic{cfg: cfg, changed: make(chan struct{})}
		if t != nil {
			if next.delta = deltaFrame(t.cfg, cfg); next.delta != nil {
				next.base = t.cfg.Version
			}
			close(t.changed)
		} else {
			grew = true
		}
		s.topics[gw] = next
	}
	if grew {
		close(s.added)
		s.added = make(chan struct{})
	}
}

// Pods returns the known pods of a Gateway, sorted by name.
func (s *Server) Pods(gateway string) []PodState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PodState
	for _, p := range s.pods[gateway] {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

// Handler serves the stream and the reports.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StreamPath, s.serveStream)
	mux.HandleFunc("POST "+ReportPath, s.serveReport)
	return mux
}

// authorize authenticates the request and checks it may see gateway.
func (s *Server) authorize(r *http.Request, gateway string) (Identity, int, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return Identity{}, http.StatusUnauthorized, errors.New("no bearer token")
	}
	id, err := s.Auth.Authenticate(r.Context(), token)
	if errors.Is(err, ErrUnauthenticated) {
		return Identity{}, http.StatusUnauthorized, err
	}
	if err != nil {
		return Identity{}, http.StatusServiceUnavailable, err
	}
	if gateway == "" || !s.Authorize(id, gateway) {
		return id, http.StatusForbidden, fmt.Errorf("service account %s/%s may not read gateway %q", id.Namespace, id.ServiceAccount, gateway)
	}
	return id, http.StatusOK, nil
}

func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	gateway := r.URL.Query().Get("gateway")
	id, code, err := s.authorize(r, gateway)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	pod := id.Pod
	if pod == "" {
		pod = r.URL.Query().Get("pod")
	}
	// A data plane that understands deltas says so; one of an older
	// version gets whole Configs.
	deltas := r.URL.Query().Get("deltas") == "1"
	conn, ok := s.connect(gateway, pod)
	if !ok {
		http.Error(w, "too many streams", http.StatusServiceUnavailable)
		return
	}
	defer s.disconnect(gateway, pod, conn)
	s.changed()

	heartbeat, writeTimeout := s.Heartbeat, s.WriteTimeout
	if heartbeat <= 0 {
		heartbeat = 10 * time.Second
	}
	if writeTimeout <= 0 {
		writeTimeout = 30 * time.Second
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	beat := encodeFrame(message{Heartbeat: true})
	ticker := time.NewTicker(heartbeat)
	defer ticker.Stop()
	sent := ""
	for {
		t, added := s.topic(gateway)
		if t == nil && sent != "" {
			return // the Gateway was served and is gone
		}
		if t != nil && t.cfg.Version != sent {
			var frame []byte
			if deltas && t.delta != nil && t.base == sent {
				frame = t.delta
				s.deltasSent.Add(1)
			} else {
				frame = t.cfg.Frame()
			}
			if write(frame) != nil {
				return
			}
			sent = t.cfg.Version
		}
		var changed <-chan struct{}
		if t != nil {
			changed = t.changed
		} else {
			// No config yet for this Gateway: wait for a Publish that adds one.
			changed = added
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-ticker.C:
			if write(beat) != nil {
				return
			}
		}
	}
}

func (s *Server) topic(gateway string) (*topic, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.added == nil {
		s.added = make(chan struct{})
	}
	return s.topics[gateway], s.added
}

func (s *Server) connect(gateway, pod string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.MaxStreams
	if limit <= 0 {
		limit = 4096
	}
	if s.streams >= limit {
		return 0, false
	}
	s.streams++
	s.nextConn++
	if s.pods == nil {
		s.pods = map[string]map[string]*PodState{}
	}
	if s.pods[gateway] == nil {
		s.pods[gateway] = map[string]*PodState{}
	}
	p := s.pods[gateway][pod]
	if p == nil {
		p = &PodState{Pod: pod}
		s.pods[gateway][pod] = p
	}
	p.Connected, p.conn = true, s.nextConn
	return s.nextConn, true
}

// disconnect forgets a pod whose stream ended: a pod that is not streaming
// may be gone for good, and its last report says nothing of what is served.
func (s *Server) disconnect(gateway, pod string, conn uint64) {
	s.mu.Lock()
	s.streams--
	if p := s.pods[gateway][pod]; p != nil && p.conn == conn {
		delete(s.pods[gateway], pod)
		if len(s.pods[gateway]) == 0 {
			delete(s.pods, gateway)
		}
	}
	s.mu.Unlock()
	s.changed()
}

// maxReport bounds a report body: a few listener errors, never megabytes.
const maxReport = 1 << 20

func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	var rep Report
	dec := json.NewDecoder(io.LimitReader(r.Body, maxReport))
	if err := dec.Decode(&rep); err != nil {
		http.Error(w, "report: "+err.Error(), http.StatusBadRequest)
		return
	}
	id, code, err := s.authorize(r, rep.Gateway)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	if id.Pod != "" {
		rep.Pod = id.Pod
	}
	s.mu.Lock()
	p := s.pods[rep.Gateway][rep.Pod]
	if p != nil && !rep.Resync {
		// A resync report says nothing of what is served; the pod
		// streams again and reports the whole Config it gets.
		p.Report = rep
	}
	s.mu.Unlock()
	if p == nil {
		// Only streaming pods count; a report from a pod whose stream
		// ended is stale by the time it would be read.
		http.Error(w, "no stream open for this pod", http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	s.changed()
}

func (s *Server) changed() {
	if s.OnChange != nil {
		s.OnChange()
	}
}
