package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
)

// With -check-pairing every request names the status its response must
// carry (/s/<code>/<n>, code 200-203 in turn, see pairingScript and
// runServer), and the observer writes every exchange as a JSON line into
// a pairingCheck. An exchange whose status is not the one its target
// asked for was paired with another request's response: the issue counts
// these with request ids, and so does this benchmark, under the same load
// as the overhead series.

// pairingScript makes wrk send /s/<code>/<n>; %s is the paced script's
// delay function or nothing.
const pairingScript = `
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/s/" .. (200 + n %% 4) .. "/" .. n)
end
%s`

// statusOfTarget is the status a /s/<code>/<n> target asks for (0: none).
func statusOfTarget(target string) int {
	rest, ok := strings.CutPrefix(target, "/s/")
	if !ok {
		return 0
	}
	code, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0
	}
	c, err := strconv.Atoi(code)
	if err != nil || c < 200 || c > 599 {
		return 0
	}
	return c
}

// pairingCheck is the observer's JSON output: it counts exchanges, those
// whose status is not their target's, and those it cannot judge (a
// truncated or foreign target).
type pairingCheck struct {
	mu                            sync.Mutex
	partial                       []byte
	exchanges, misPaired, unknown int64
}

func (p *pairingCheck) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	data := append(p.partial, b...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		p.line(data[:i])
		data = data[i+1:]
	}
	p.partial = append(p.partial[:0], data...)
	return len(b), nil
}

func (p *pairingCheck) line(l []byte) {
	var rec struct {
		Type      string `json:"type"`
		Target    string `json:"target"`
		Truncated bool   `json:"target_truncated"`
		Status    int    `json:"status"`
	}
	if json.Unmarshal(l, &rec) != nil || rec.Type != "exchange" {
		return
	}
	p.exchanges++
	want := statusOfTarget(rec.Target)
	switch {
	case want == 0 || rec.Truncated:
		p.unknown++
	case rec.Status != want:
		p.misPaired++
	}
}

func (p *pairingCheck) counts() (exchanges, misPaired, unknown int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exchanges, p.misPaired, p.unknown
}
