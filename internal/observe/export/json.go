package export

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/false-systems/rauta/internal/observe/detect"
)

// JSON writes events, and optionally every exchange, as one JSON object
// per line.
type JSON struct {
	enc *json.Encoder
}

// NewJSON writes to w (typically os.Stdout).
func NewJSON(w io.Writer) *JSON { return &JSON{enc: json.NewEncoder(w)} }

// Event writes a processor event ("type":"event").
func (j *JSON) Event(e *detect.Event) error {
	if err := j.enc.Encode(struct {
		Type string `json:"type"`
		*detect.Event
	}{"event", e}); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// ExchangeRecord is the JSON form of one observed exchange.
type ExchangeRecord struct {
	Type          string    `json:"type"` // "exchange"
	Time          time.Time `json:"time"`
	Service       string    `json:"service"`
	Namespace     string    `json:"namespace,omitempty"`
	Pod           string    `json:"pod,omitempty"`
	Client        string    `json:"client"`
	Server        string    `json:"server"`
	Method        string    `json:"method"`
	Target        string    `json:"target"`
	Route         string    `json:"route"`
	Host          string    `json:"host,omitempty"`
	UserAgent     string    `json:"user_agent,omitempty"`
	Status        int       `json:"status"`
	Outcome       string    `json:"outcome"`
	LatencyNS     int64     `json:"latency_ns"`
	StartKernelNS uint64    `json:"start_kernel_ns"`
}

// Exchange writes one observed exchange ("type":"exchange").
func (j *JSON) Exchange(o *detect.Observation) error {
	rec := ExchangeRecord{
		Type: "exchange", Time: o.Time,
		Service: o.Service, Namespace: o.Namespace, Pod: o.Pod,
		Client: o.Client.String(), Server: o.Server.String(),
		Method: o.Method, Target: o.Target, Route: o.Route,
		Host: o.Host, UserAgent: o.UserAgent,
		Status: o.Status, Outcome: o.Outcome.String(),
		LatencyNS: int64(o.Latency()), StartKernelNS: o.StartNS,
	}
	if err := j.enc.Encode(&rec); err != nil {
		return fmt.Errorf("write exchange: %w", err)
	}
	return nil
}
