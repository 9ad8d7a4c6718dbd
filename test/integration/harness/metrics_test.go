package harness

import (
	"errors"
	"strings"
	"testing"
)

func TestMetricValue(t *testing.T) {
	const text = `# HELP rauta_status_writes_total Objects whose status this replica wrote as leader.
# TYPE rauta_status_writes_total counter
rauta_status_writes_total 7
# TYPE rauta_config_reloads_total counter
rauta_config_reloads_total{result="failure"} 1
rauta_config_reloads_total{result="success"} 4
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{le="+Inf"} 3
http_server_request_duration_seconds_sum 0.5
http_server_request_duration_seconds_count 3
`
	for _, tc := range []struct {
		name    string
		want    float64
		wantErr error
		anyErr  bool
	}{
		{name: "rauta_status_writes_total", want: 7},
		{name: "rauta_config_reloads_total", want: 5},
		{name: "rauta_missing_total", wantErr: ErrNoSample},
		{name: "http_server_request_duration_seconds", anyErr: true},
	} {
		got, err := MetricValue(strings.NewReader(text), tc.name)
		switch {
		case tc.wantErr != nil:
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
			}
		case tc.anyErr:
			if err == nil {
				t.Errorf("%s: no error for a histogram", tc.name)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case got != tc.want:
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzMetricValue(f *testing.F) {
	f.Add("# TYPE a counter\na 1\n")
	f.Add("a{b=\"c\"} 2\n")
	f.Add("# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		_, _ = MetricValue(strings.NewReader(text), "a") // must not panic
	})
}
