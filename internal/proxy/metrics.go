package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the proxy's collectors.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	connectErrors *prometheus.CounterVec
	// failover.go
	retries       *prometheus.CounterVec
	retryOverflow *prometheus.CounterVec
	ejections     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_requests_total",
			Help: "Requests served, by gateway, route (the rule's name, never the path), method and status class.",
		}, []string{"gateway", "route", "method", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rauta_request_duration_seconds",
			Help:    "Time from reading the request headers to the end of the response.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"gateway", "route", "method", "status_class"}),
		connectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_connect_errors_total",
			Help: "Backend requests that failed to connect or were reset, by backend.",
		}, []string{"backend"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_retries_total",
			Help: "Requests sent to a second endpoint after the first failed before any response byte, by backend.",
		}, []string{"backend"}),
		retryOverflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_retry_budget_exhausted_total",
			Help: "Retries not made because the backend's retry budget was spent, by backend.",
		}, []string{"backend"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_ejections_total",
			Help: "Endpoints left out of load balancing after a connect failure or reset (passive health), by backend.",
		}, []string{"backend"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.connectErrors, m.retries, m.retryOverflow, m.ejections} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register metrics: %w (one Server per registry)", err)
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// knownMethods are the method label values; anything else is "OTHER", so
// clients cannot grow the label set.
var knownMethods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "OTHER",
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func methodIndex(m string) int {
	for i, k := range knownMethods[:len(knownMethods)-1] {
		if m == k {
			return i
		}
	}
	return len(knownMethods) - 1
}

func statusIndex(code int) int {
	switch {
	case code < 200:
		return 0
	case code >= 500:
		return 4
	}
	return code/100 - 1
}

// routeMetrics resolves the label sets of one (gateway, route) pair lazily:
// the first request with a method and status class pays the label lookup,
// later ones load a pointer. It outlives reloads, so a route that stays keeps
// its resolved series.
type routeMetrics struct {
	m       *metrics
	gateway string
	route   string
	series  [len(knownMethods)][len(statusClasses)]atomic.Pointer[series]
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (rm *routeMetrics) observe(method string, code int, seconds float64) {
	mi, si := methodIndex(method), statusIndex(code)
	p := &rm.series[mi][si]
	s := p.Load()
	if s == nil {
		labels := []string{rm.gateway, rm.route, knownMethods[mi], statusClasses[si]}
		s = &series{
			requests: rm.m.requests.WithLabelValues(labels...),
			duration: rm.m.duration.WithLabelValues(labels...),
		}
		p.Store(s)
	}
	s.requests.Inc()
	s.duration.Observe(seconds)
}

// forget deletes every series of the route, once it is gone from the config.
func (rm *routeMetrics) forget() {
	labels := prometheus.Labels{"gateway": rm.gateway, "route": rm.route}
	rm.m.requests.DeletePartialMatch(labels)
	rm.m.duration.DeletePartialMatch(labels)
}

type routeKey struct{ gateway, route string }
