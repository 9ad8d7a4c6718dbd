package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/false-systems/rauta/bench/internal/procgroup"
	"github.com/false-systems/rauta/bench/routegen"
)

// prepareRoutes writes the routes configs of every contender taking part,
// and the wrk script that spreads requests over the routes.
func (x *extras) prepareRoutes(cts []*contender) error {
	res := routegen.Resources(routeCount)
	routes, err := benchRoutes(res)
	if err != nil {
		return err
	}
	x.routeSet = routes
	x.requests = routegen.Requests(routeCount, 2*routeCount)
	if x.routeScript, err = x.e.write("routes.lua", routesWrkScript(x.requests)); err != nil {
		return err
	}
	re := *x.e
	re.tag = "routes-"
	for _, ct := range cts {
		if !takesPart(ct.Name, groupRoutes) {
			continue
		}
		c, err := newContender(ct.Name, &re, x.o)
		if err != nil {
			return err
		}
		c.Env = ct.Env
		switch kind, _ := contenderKind(ct.Name); kind {
		case "rauta", rautaB:
			if c.Config, err = routesRautaManifests(res); err == nil {
				err = os.WriteFile(c.ConfigFile, []byte(c.Config), 0o644)
			}
		case rautaDP:
			if c.Config, err = routesRautaManifests(res); err == nil {
				err = os.WriteFile(c.ConfigFile, []byte(c.Config), 0o644)
			}
			if err == nil {
				err = re.feedDataplane(c, routegen.GatewayNamespace+"/"+routegen.GatewayName, x.o)
			}
		case "nginx":
			c.Config = re.routesNginxConfig(routes)
			err = os.WriteFile(c.ConfigFile, []byte(c.Config), 0o644)
		case "haproxy":
			var maps map[string]string
			c.Config, maps = re.routesHAProxyConfig(routes)
			err = writeMaps(re.path("haproxy-routes"), maps)
			if err == nil {
				err = os.WriteFile(c.ConfigFile, []byte(c.Config), 0o644)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", ct.Name, err)
		}
		// The JSON results keep the path, not 10,000 routes' worth of text.
		c.Config = fmt.Sprintf("(%d bytes, generated from bench/routegen.Resources(%d))", len(c.Config), routeCount)
		x.routes[ct.Name] = c
	}
	return nil
}

func writeMaps(dir string, maps map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, body := range maps {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// routesWrkScript makes wrk send the requests in turn, each a literal
// HTTP/1.1 request (built once, so the only per-request Lua is an index),
// and print the same summary as wrkScript.
func routesWrkScript(reqs []routegen.Request) string {
	var b strings.Builder
	b.WriteString("local reqs = {\n")
	for _, r := range reqs {
		fmt.Fprintf(&b, "%q,\n", rawRequest(r))
	}
	b.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n")
	b.WriteString(wrkScript)
	return b.String()
}

// rawRequest is r as HTTP/1.1 bytes.
func rawRequest(r routegen.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.Path, r.Host)
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// measureRoutes starts ct with 10,000 routes, checks that a spread of
// requests reaches the route each names, and runs the routes cell.
func (x *extras) measureRoutes(ctx context.Context, ps *procgroup.Set, ct *contender, rep int, out *report) {
	rc := x.routes[ct.Name]
	if rc == nil {
		return
	}
	fmt.Printf("repeat %d: %s, %d routes\n", rep+1, ct.Name, routeCount)
	if err := portsFree(httpPort, httpsPort, httpsRSAPort, grpcPort, wsPort, rautaAdminPort); err != nil {
		out.fail(ct.Name, rep, "start (routes)", err)
		return
	}
	started := time.Now()
	p, err := ps.Start(ct.Name, rc.Argv, rc.Env, x.e.path(fmt.Sprintf("%s-routes-%d.log", ct.Name, rep)))
	if err != nil {
		out.fail(ct.Name, rep, "start (routes)", err)
		return
	}
	defer ps.Stop(p, 5*time.Second)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	if err := waitRoute(ctx, client, p, x.requests[0], 120*time.Second); err != nil {
		out.fail(ct.Name, rep, "start (routes)", err)
		return
	}
	ready := time.Since(started)
	if err := verifyRoutes(ctx, client, x.requests); err != nil {
		out.fail(ct.Name, rep, "answers (routes)", err)
		return
	}
	for _, c := range x.xcells {
		if c.Group != groupRoutes || ctx.Err() != nil {
			continue
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/", httpPort)
		wd := max(x.o.warmup.Round(time.Second), time.Second)
		_, _ = runWrk(ctx, wrkArgv(x.o.loadCPU, x.routeScript, url, c.Conns, wd), wd)
		rss, pss := procgroup.RSSBytes(p.PGID()), procgroup.PSSBytes(p.PGID())
		s := measure(x.o, p, ct.Name, c.Name, rep, c.Size, func() (result, error) {
			return runWrk(ctx, wrkArgv(x.o.loadCPU, x.routeScript, url, c.Conns, x.o.duration), x.o.duration)
		})
		s.RSS, s.PSS, s.ReadySeconds = rss, pss, ready.Seconds()
		out.add(s)
		s.print()
		fmt.Printf("  %-22s with %d routes loaded, before the run: RSS %.1f MiB, PSS %.1f MiB; first answer %.1f s after start\n", "",
			routeCount, float64(rss)/(1<<20), float64(pss)/(1<<20), ready.Seconds())
	}
}

// waitRoute polls one route until it answers as it should, the process
// exits, or d passes: loading 10,000 routes takes a while.
func waitRoute(ctx context.Context, client *http.Client, p *procgroup.Proc, r routegen.Request, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if done, err := p.Exited(); done {
			return fmt.Errorf("exited during start-up (%w); log %s: %s", err, p.Log, fileTail(p.Log, 600))
		}
		if last = routeGet(ctx, client, r); last == nil {
			return nil
		}
		sleepCtx(ctx, 200*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("not ready after %s: %w", d, last)
}

// verifyRoutes sends 500 requests spread over the routes; each must reach
// its own route (X-Route) with the backend's 1 KiB body. A host no route
// has must get 404.
func verifyRoutes(ctx context.Context, client *http.Client, reqs []routegen.Request) error {
	step := max(1, len(reqs)/500)
	for i := 0; i < len(reqs); i += step {
		if err := routeGet(ctx, client, reqs[i]); err != nil {
			return err
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", httpPort), nil)
	req.Host = "no-such-route.example.org"
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("host without a route: status %d, want 404", resp.StatusCode)
	}
	return nil
}

func routeGet(ctx context.Context, client *http.Client, r routegen.Request) error {
	req, err := http.NewRequestWithContext(ctx, r.Method, fmt.Sprintf("http://127.0.0.1:%d%s", httpPort, r.Path), nil)
	if err != nil {
		return err
	}
	req.Host = r.Host
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s%s: %w", r.Method, r.Host, r.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("%s %s%s: %w", r.Method, r.Host, r.Path, err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s %s%s: status %d, want 200", r.Method, r.Host, r.Path, resp.StatusCode)
	case resp.Header.Get("X-Route") != r.Route:
		return fmt.Errorf("%s %s%s: answered by route %q, want %q", r.Method, r.Host, r.Path, resp.Header.Get("X-Route"), r.Route)
	case len(body) != 1<<10:
		return fmt.Errorf("%s %s%s: %d body bytes, want 1024", r.Method, r.Host, r.Path, len(body))
	}
	return nil
}
