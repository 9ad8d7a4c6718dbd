package node

import (
	"bytes"
	"strings"
	"testing"
)

func TestTailLines(t *testing.T) {
	tests := []struct {
		data string
		n    int64
		want string
	}{
		{"one\ntwo\nthree\n", 0, ""},
		{"one\ntwo\nthree\n", 1, "three\n"},
		{"one\ntwo\nthree\n", 2, "two\nthree\n"},
		{"one\ntwo\nthree\n", 3, "one\ntwo\nthree\n"},
		{"one\ntwo\nthree\n", 10, "one\ntwo\nthree\n"},
		{"one\ntwo\npartial", 1, "partial"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := string(tailLines([]byte(tt.data), tt.n)); got != tt.want {
			t.Errorf("tailLines(%q, %d) = %q, want %q", tt.data, tt.n, got, tt.want)
		}
	}
}

func TestParseLogQuery(t *testing.T) {
	tests := []struct {
		q       map[string][]string
		want    logQuery
		wantErr string
	}{
		{q: nil, want: logQuery{tailLines: -1}},
		{q: map[string][]string{"follow": {"true"}, "tailLines": {"5"}, "limitBytes": {"100"}}, want: logQuery{follow: true, tailLines: 5, limitBytes: 100}},
		{q: map[string][]string{"tailLines": {"-1"}}, wantErr: "tailLines"},
		{q: map[string][]string{"follow": {"yes please"}}, wantErr: "follow"},
		{q: map[string][]string{"limitBytes": {"0"}}, wantErr: "limitBytes"},
		{q: map[string][]string{"previous": {"true"}}, wantErr: "previous"},
	}
	for _, tt := range tests {
		got, err := parseLogQuery(tt.q)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseLogQuery(%v) error %v, want one naming %q", tt.q, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseLogQuery(%v) = %+v, %v; want %+v", tt.q, got, err, tt.want)
		}
	}
}

func TestLimitWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &limitWriter{w: &buf, left: 5}
	n, err := w.Write([]byte("abc"))
	if n != 3 || err != nil {
		t.Fatalf("first write %d, %v", n, err)
	}
	n, err = w.Write([]byte("defg"))
	if n != 2 || err == nil || buf.String() != "abcde" {
		t.Fatalf("second write %d, %v, buffer %q", n, err, buf.String())
	}
}

// FuzzParseLogQuery: query strings come from any API client through the API server.
func FuzzParseLogQuery(f *testing.F) {
	f.Add("true", "10", "100")
	f.Add("", "", "")
	f.Add("1", "-5", "x")
	f.Fuzz(func(t *testing.T, follow, tail, limit string) {
		q, err := parseLogQuery(map[string][]string{"follow": {follow}, "tailLines": {tail}, "limitBytes": {limit}})
		if err == nil && (q.tailLines < -1 || q.limitBytes < 0) {
			t.Fatalf("accepted negative values: %+v", q)
		}
	})
}

// FuzzTailLines: the result is always a suffix of the input.
func FuzzTailLines(f *testing.F) {
	f.Add([]byte("a\nb\n"), int64(1))
	f.Add([]byte(""), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, n int64) {
		if n < 0 {
			n = -n
		}
		got := tailLines(data, n%1000)
		if !bytes.HasSuffix(data, got) {
			t.Fatalf("tailLines result %q is not a suffix of %q", got, data)
		}
	})
}
