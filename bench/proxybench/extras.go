package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/false-systems/rauta/bench/internal/procgroup"
	"github.com/false-systems/rauta/bench/routegen"
)

// extras runs the cells of issue 18 point 1 (xcells.go): the client cells
// on each contender's usual config, and the idle and routes cells, which
// need configs of their own and so a contender start of their own.
type extras struct {
	e      *env
	o      options
	self   string // this binary, run as the client and the Go backend
	xcells []xcell
	// idle and routes hold the contenders started for those groups, by name.
	idle, routes map[string]*contender
	routeSet     []benchRoute
	requests     []routegen.Request
	routeScript  string // wrk script that spreads requests over the routes
}

func newExtras(e *env, o options, cts []*contender, xcells []xcell) (*extras, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	x := &extras{e: e, o: o, self: self, xcells: xcells, idle: map[string]*contender{}, routes: map[string]*contender{}}
	if x.has(groupIdle) {
		ie := *e
		ie.idle, ie.tag = true, "idle-"
		for _, ct := range cts {
			if takesPart(ct.Name, groupIdle) {
				c, err := newContender(ct.Name, &ie, o)
				if err != nil {
					return nil, err
				}
				c.Env = ct.Env
				x.idle[ct.Name] = c
			}
		}
	}
	if x.has(groupRoutes) {
		if err := x.prepareRoutes(cts); err != nil {
			return nil, fmt.Errorf("routes cell: %w", err)
		}
	}
	return x, nil
}

func (x *extras) has(group string) bool {
	return slices.ContainsFunc(x.xcells, func(c xcell) bool { return c.Group == group })
}

// mainCells are the cells run on each contender's usual config.
func (x *extras) mainCells() []xcell {
	var out []xcell
	for _, c := range x.xcells {
		if c.Group == groupTLS || c.Group == groupGRPC || c.Group == groupWS {
			out = append(out, c)
		}
	}
	return out
}

// cellsFor keeps the cells a contender takes part in.
func (x *extras) cellsFor(name string, cs []xcell) []xcell {
	var out []xcell
	for _, c := range cs {
		if takesPart(name, c.Group) {
			out = append(out, c)
		}
	}
	return out
}

func (x *extras) needGoBackend() bool { return x.has(groupGRPC) || x.has(groupWS) }

// startGoBackend runs "proxybench backend" on the load CPU and waits until
// both its ports accept connections.
func (x *extras) startGoBackend(ctx context.Context, ps *procgroup.Set) (*procgroup.Proc, error) {
	if err := portsFree(goGRPCPort, goWSPort); err != nil {
		return nil, fmt.Errorf("go backend: %w", err)
	}
	argv := []string{"taskset", "-c", x.o.loadCPU, x.self, "backend", "-grpc", loopback(goGRPCPort), "-ws", loopback(goWSPort)}
	p, err := ps.Start("go-backend", argv, nil, x.e.path("go-backend.Log"))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range []int{goGRPCPort, goWSPort} {
		for {
			c, err := net.DialTimeout("tcp", loopback(port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if done, perr := p.Exited(); done {
				return nil, fmt.Errorf("go backend exited (%w): %s", perr, fileTail(p.Log, 400))
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				ps.Stop(p, time.Second)
				return nil, fmt.Errorf("go backend: port %d not open after 10s: %w", port, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return p, nil
}

// measureClientCell runs "proxybench client" for one cell, after a
// discarded one-second warm-up for the cells that keep connections (their
// proxies open backend connections on first use).
func (x *extras) measureClientCell(ctx context.Context, p *procgroup.Proc, ct *contender, c xcell, rep int) sample {
	d := x.o.duration
	if c.Group != groupTLS {
		_, _ = runClientTool(ctx, clientArgv(x.self, x.o.loadCPU, ct, x.e, c, time.Second), time.Second)
	}
	var cr clientResult
	s := measure(x.o, p, ct.Name, c.Name, rep, c.Size, func() (result, error) {
		var err error
		argv := clientArgv(x.self, x.o.loadCPU, ct, x.e, c, d)
		cr, err = runClientTool(ctx, argv, d)
		if err == nil && cr.Errors > 0 {
			err = fmt.Errorf("%d errors, first: %s", cr.Errors, cr.FirstError)
		}
		return cr.asResult(argv), err
	})
	s.Resumed = cr.Resumed
	s.print()
	return s
}

func runClientTool(ctx context.Context, argv []string, d time.Duration) (clientResult, error) {
	out, err := runTool(ctx, d+30*time.Second, argv)
	if err != nil {
		return clientResult{}, err
	}
	return parseClientResult(out)
}
