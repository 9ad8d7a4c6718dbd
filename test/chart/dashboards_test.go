package chart_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/export"
	"github.com/false-systems/rauta/internal/observe/pair"
	"github.com/false-systems/rauta/internal/translate"
)

// exported maps each series name a registry exposes (histograms as their
// _bucket, _sum and _count series) to its label names.
type exported map[string]map[string]bool

func gatherNames(t *testing.T, g prometheus.Gatherer) exported {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := exported{}
	add := func(name string, m *dto.Metric, extra ...string) {
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for _, l := range m.GetLabel() {
			out[name][l.GetName()] = true
		}
		for _, e := range extra {
			out[name][e] = true
		}
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				add(mf.GetName()+"_bucket", m, "le")
				add(mf.GetName()+"_sum", m)
				add(mf.GetName()+"_count", m)
				continue
			}
			add(mf.GetName(), m)
		}
	}
	return out
}

// gatewayMetrics runs a gateway with a served route, a route whose only
// endpoint is dead and a route to two endpoints of which one is dead, sends
// requests to each and to no route, and returns what its registry exports.
func gatewayMetrics(t *testing.T) exported {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/budget" {
			time.Sleep(300 * time.Millisecond) // retries stay in flight
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	dead := func() ir.Endpoint {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ap := netip.MustParseAddrPort(ln.Addr().String())
		ln.Close()
		return ir.Endpoint{Address: ap.Addr().String(), Port: uint32(ap.Port())}
	}
	live := netip.MustParseAddrPort(backend.Listener.Addr().String())
	liveEP := ir.Endpoint{Address: live.Addr().String(), Port: uint32(live.Port())}
	route := func(name, path string, eps ...ir.Endpoint) ir.Route {
		return ir.Route{Name: name, Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: path}},
			Backends: []ir.Backend{{Name: "default/" + name + ":80", Weight: 1, Endpoints: eps}}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	ln.Close()
	snap := &ir.Snapshot{Listeners: []ir.Listener{{Name: "default/gw/http", Gateway: "default/gw", Address: "127.0.0.1", Port: uint32(port), Protocol: ir.ProtocolHTTP,
		VirtualHosts: []ir.VirtualHost{{Name: "default/gw/http", Routes: []ir.Route{
			route("httproute/default/dead/rule/0", "/dead", dead()),
			// Of two dead endpoints in three only one may be ejected (at
			// most 50 %): concurrent requests keep failing over to the
			// slow live one until the retry budget is spent.
			route("httproute/default/budget/rule/0", "/budget", liveEP, dead(), dead()),
			route("httproute/default/half/rule/0", "/half", liveEP, dead()),
			route("httproute/default/ok/rule/0", "/ok", liveEP),
		}}}}}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := gateway.New(gateway.Options{Address: "127.0.0.1", AdminAddr: "127.0.0.1:0", AccessLog: io.Discard}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := g.Apply(snap, &translate.Status{}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var lastErr error
	for range 100 { // until the listener serves
		var resp *http.Response
		if resp, lastErr = c.Get(base + "/ok"); lastErr == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	for _, path := range []string{"/ok", "/dead", "/nowhere", "/half", "/half", "/half", "/half"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if resp, err := c.Get(base + "/budget"); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return gatherNames(t, g.Registry)
}

// observerMetrics records one exchange and one detection in the observer's
// exporter and returns what its registry exports.
func observerMetrics(t *testing.T) exported {
	t.Helper()
	p := export.NewProm(func() export.Counters { return export.Counters{} })
	p.Record(&detect.Observation{Exchange: &pair.Exchange{Method: "GET", Status: 503, Outcome: pair.Complete, ReqContentLength: 0, RespContentLength: 10, StartNS: 1, EndNS: 2e6},
		Service: "web", Namespace: "default", Route: "/api"})
	p.Detection(&detect.Event{Kind: detect.KindErrorSpike, Service: "web"})
	return gatherNames(t, p.Registry())
}

// targetLabels are the labels Prometheus adds to every series from the
// scrape target (the PodMonitor's pods, the ServiceMonitor's service).
var targetLabels = []string{"job", "instance", "namespace", "pod", "container", "service", "endpoint", "node"}

// grafanaVars replaces Grafana's variables so an expression is PromQL.
var grafanaVars = regexp.MustCompile(`\$(__rate_interval|__interval|__range)|\$\{?[a-z_]+\}?`)

func promql(expr string) string {
	return grafanaVars.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.HasPrefix(v, "$__") {
			return "5m"
		}
		return "x"
	})
}

// checkExpr parses expr and checks every selector's metric and label names
// and every aggregation's grouping labels against what is exported.
func checkExpr(t *testing.T, where, expr string, have exported) {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(promql(expr))
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return
	}
	var metrics []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		labels, ok := have[vs.Name]
		if !ok {
			t.Errorf("%s: metric %s is not exported (%q)", where, vs.Name, expr)
			return nil
		}
		metrics = append(metrics, vs.Name)
		for _, m := range vs.LabelMatchers {
			if m.Name != "__name__" && !labels[m.Name] && !slices.Contains(targetLabels, m.Name) {
				t.Errorf("%s: %s has no label %q (%q)", where, vs.Name, m.Name, expr)
			}
		}
		return nil
	})
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		agg, ok := n.(*parser.AggregateExpr)
		if !ok || agg.Without {
			return nil
		}
		for _, g := range agg.Grouping {
			found := slices.Contains(targetLabels, g)
			for _, m := range metrics {
				found = found || have[m][g]
			}
			if !found {
				t.Errorf("%s: no selected metric has the grouping label %q (%q)", where, g, expr)
			}
		}
		return nil
	})
}

// TestDashboardsAndAlertsMatchTheBinaries: every alert rule and dashboard
// query parses as PromQL and names only metrics and labels that a running
// gateway, or the observer's exporter, exports (files/alerts.yaml, group
// rauta-gateway against the gateway, rauta-observer against the observer;
// each dashboard against its component).
func TestDashboardsAndAlertsMatchTheBinaries(t *testing.T) {
	have := map[string]exported{"gateway": gatewayMetrics(t), "observer": observerMetrics(t)}
	dir := chartDir(t)

	raw, err := os.ReadFile(filepath.Join(dir, "files", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		component := strings.TrimPrefix(g.Name, "rauta-")
		if have[component] == nil {
			t.Fatalf("alert group %q: want rauta-gateway or rauta-observer", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("group %s: a rule without alert, expr, severity or summary: %+v", g.Name, r)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			checkExpr(t, "alert "+r.Alert, r.Expr, have[component])
			alerts++
		}
	}

	for component, file := range map[string]string{"gateway": "rauta-gateway.json", "observer": "rauta-observer.json"} {
		raw, err := os.ReadFile(filepath.Join(dir, "files", "dashboards", file))
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			UID        string `json:"uid"`
			Templating struct {
				List []struct {
					Name       string `json:"name"`
					Definition string `json:"definition"`
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &dash); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		queries := 0
		for _, p := range dash.Panels {
			for _, tg := range p.Targets {
				checkExpr(t, file+" panel "+p.Title, tg.Expr, have[component])
				queries++
			}
		}
		// label_values(selector, label): the selector is PromQL, the label
		// one of its metric's.
		lv := regexp.MustCompile(`^label_values\((.*),\s*([a-z_]+)\)$`)
		for _, v := range dash.Templating.List {
			m := lv.FindStringSubmatch(v.Definition)
			if m == nil {
				continue
			}
			checkExpr(t, file+" variable "+v.Name, m[1], have[component])
			sel, err := parser.NewParser(parser.Options{}).ParseExpr(promql(m[1]))
			if vs, ok := sel.(*parser.VectorSelector); err == nil && ok && !have[component][vs.Name][m[2]] {
				t.Errorf("%s variable %s: %s has no label %q", file, v.Name, vs.Name, m[2])
			}
		}
		if dash.UID == "" || queries < 5 {
			t.Errorf("%s: uid %q, %d queries", file, dash.UID, queries)
		}
	}
	if alerts < 5 {
		t.Errorf("%d alert rules", alerts)
	}
}
