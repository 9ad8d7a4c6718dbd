package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// adminClient reads a controller's admin endpoints on loopback; the timeout
// keeps a hung controller from hanging a test.
var adminClient = &http.Client{Timeout: 10 * time.Second}

// Metric scrapes the controller's /metrics and returns the sum of every
// sample of the counter or gauge name (all label sets).
func (c *Controller) Metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.AdminAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", c.Identity, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: %s", c.Identity, resp.Status)
	}
	return MetricValue(io.LimitReader(resp.Body, 16<<20), name)
}

// MetricValue reads Prometheus text exposition from r and sums the samples
// of the counter or gauge name.
func MetricValue(r io.Reader, name string) (float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("parse metrics: %w", err)
	}
	fam, ok := families[name]
	if !ok {
		return 0, fmt.Errorf("%s: %w", name, ErrNoSample)
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			sum += m.GetUntyped().GetValue()
		default:
			return 0, fmt.Errorf("%s: not a counter or gauge", name)
		}
	}
	return sum, nil
}
