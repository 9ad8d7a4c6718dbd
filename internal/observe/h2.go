package observe

import (
	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/h2parse"
)

// newH2 builds the h2c tracker: its exchanges take the same path as the
// HTTP/1.x pairer's (enrichment, routes, outputs, processors), and its
// streams still waiting for a response reach the same overdue sweep.
func newH2(cfg Config, p *pipeline) *h2parse.Tracker {
	return h2parse.New(h2parse.Limits{
		RequestTimeout: cfg.RequestTimeout,
		OverdueAfter:   overdueAfter(cfg),
		Overdue:        p.onOverdue,
	}, p.onExchange)
}

// h2Segment hands a segment of an h2c connection to the tracker.
func (p *pipeline) h2Segment(ev *capture.Event) {
	p.h2seg = h2parse.Segment{
		TS: ev.TimestampNS, Src: ev.Src, Dst: ev.Dst, Seq: ev.Seq, Ack: ev.Ack,
		HasAck: ev.TCPFlags&capture.FlagACK != 0, FIN: ev.TCPFlags&capture.FlagFIN != 0,
		PayloadLen: ev.PayloadLen, Data: ev.Data,
	}
	p.h2.Segment(&p.h2seg)
}
