package e2e

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics scrapes /metrics and parses the text format strictly.
func (g *gateway) metrics() map[string]*dto.MetricFamily {
	g.t.Helper()
	status, body := g.adminGet("/metrics")
	if status != 200 {
		g.t.Fatalf("/metrics: status %d", status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		g.t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	return fams
}

// counterSum adds the counter (or gauge) values, or histogram sample
// counts, of every series of name
// whose labels include want.
func counterSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range series(fams, name, want) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// series lists the series of name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f, ok := fams[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		if hasLabels(m, want) {
			out = append(out, m)
		}
	}
	return out
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := labelMap(m)
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func labelMap(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.Label))
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// reloads returns rauta_config_reloads_total for result.
func (g *gateway) reloads(result string) float64 {
	g.t.Helper()
	return counterSum(g.metrics(), "rauta_config_reloads_total", map[string]string{"result": result})
}

// requireFamily fails the test when /metrics lacks a metric family.
func requireFamily(t *testing.T, fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	return f
}
