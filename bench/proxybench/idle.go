package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/false-systems/rauta/bench/internal/procgroup"
)

// idleSample is one run of an idle cell: n keep-alive connections that
// each made one request, then held idle.
type idleSample struct {
	Contender string `json:"contender"`
	Cell      string `json:"cell"`
	Repeat    int    `json:"repeat"`
	Conns     int    `json:"conns"`
	// RSSBefore and RSSAfter are the group's VmRSS before the connections
	// were opened and after, with all of them open and idle.
	RSSBefore uint64 `json:"rss_before_bytes"`
	RSSAfter  uint64 `json:"rss_after_bytes"`
	// KiBPerConn is (RSSAfter-RSSBefore)/Conns.
	KiBPerConn float64 `json:"kib_per_conn"`
	// IdleCPU is the group's CPU seconds over IdleSeconds of holding them.
	IdleCPU     float64 `json:"idle_cpu_seconds"`
	IdleSeconds float64 `json:"idle_seconds"`
	OpenSeconds float64 `json:"open_seconds"`
	Error       string  `json:"error,omitempty"`
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard one (and the hard
// one to want, where the process may: root with CAP_SYS_RESOURCE) and
// returns the soft limit it got. The proxies the harness starts inherit
// it, and their configs are sized to it (env.fdLimit).
func raiseNoFile(want uint64) (int, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return int(want), nil
		}
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", l.Max, err)
	}
	return int(l.Cur), nil
}

// fdHeadroom is what a process needs beside the idle connections: backend
// connections, listeners, logs.
const fdHeadroom = 1000

// idleWindow is how long the connections are held while idle CPU is
// measured.
func (x *extras) idleWindow() time.Duration {
	if x.o.quick {
		return 2 * time.Second
	}
	return 10 * time.Second
}

// measureIdle starts ct's idle-cell config and runs the idle cells.
func (x *extras) measureIdle(ctx context.Context, ps *procgroup.Set, chk *checker, ct *contender, rep int, out *report) {
	ic := x.idle[ct.Name]
	if ic == nil {
		return
	}
	fmt.Printf("repeat %d: %s, idle connections\n", rep+1, ct.Name)
	if err := portsFree(httpPort, httpsPort, httpsRSAPort, grpcPort, wsPort, rautaAdminPort); err != nil {
		out.fail(ct.Name, rep, "start (idle)", err)
		return
	}
	p, err := ps.Start(ct.Name, ic.Argv, ic.Env, x.e.path(fmt.Sprintf("%s-idle-%d.log", ct.Name, rep)))
	if err != nil {
		out.fail(ct.Name, rep, "start (idle)", err)
		return
	}
	defer ps.Stop(p, 5*time.Second)
	if err := chk.waitReady(ctx, ic, p, 15*time.Second); err != nil {
		out.fail(ct.Name, rep, "start (idle)", err)
		return
	}
	for _, c := range x.xcells {
		if c.Group != groupIdle || ctx.Err() != nil {
			continue
		}
		s := x.idleRun(ctx, p, ct.Name, c, rep)
		out.addIdle(s)
		status := "ok"
		if s.Error != "" {
			status = "INVALID: " + s.Error
		}
		fmt.Printf("  %-22s RSS %7.1f -> %7.1f MiB  %6.2f KiB/conn  idle CPU %.3f s in %.0f s  open %.1f s  %s\n", s.Cell,
			float64(s.RSSBefore)/(1<<20), float64(s.RSSAfter)/(1<<20), s.KiBPerConn, s.IdleCPU, s.IdleSeconds, s.OpenSeconds, status)
	}
}

func (x *extras) idleRun(ctx context.Context, p *procgroup.Proc, name string, c xcell, rep int) idleSample {
	s := idleSample{Contender: name, Cell: c.Name, Repeat: rep, Conns: c.Idle}
	if c.Idle+fdHeadroom > x.e.fdLimit {
		s.Error = fmt.Sprintf("not run: %d connections need RLIMIT_NOFILE %d in the harness and in the proxy, and the hard limit here is %d (no CAP_SYS_RESOURCE to raise it)",
			c.Idle, c.Idle+fdHeadroom, x.e.fdLimit)
		return s
	}
	pgid := p.PGID()
	s.RSSBefore = procgroup.RSSBytes(pgid)
	t0 := time.Now()
	conns, err := openIdle(ctx, loopback(httpPort), c.Idle)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
		time.Sleep(time.Second) // let the proxy see the closes before the next cell
	}()
	s.OpenSeconds = time.Since(t0).Seconds()
	if err != nil {
		s.Error = err.Error()
		return s
	}
	sleepCtx(ctx, time.Second)
	s.RSSAfter = procgroup.RSSBytes(pgid)
	cpu0, w0 := procgroup.CPUSeconds(pgid), time.Now()
	sleepCtx(ctx, x.idleWindow())
	s.IdleCPU, s.IdleSeconds = procgroup.CPUSeconds(pgid)-cpu0, time.Since(w0).Seconds()
	s.KiBPerConn = (float64(s.RSSAfter) - float64(s.RSSBefore)) / float64(c.Idle) / 1024
	// The connections must still be open: a proxy that dropped them would
	// look cheap.
	if err := checkAlive(conns, 100); err != nil {
		s.Error = err.Error()
	}
	if done, perr := p.Exited(); done {
		s.Error = fmt.Sprintf("contender exited (%v); log: %s", perr, fileTail(p.Log, 400))
	}
	return s
}

// openIdle opens n HTTP/1.1 connections to addr, 64 at a time from several
// loopback source addresses, and makes one GET /1k on each.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= n || first != nil || ctx.Err() != nil
				mu.Unlock()
				if stop {
					return
				}
				nc, err := oneRequest(addr, sourceAddr(i))
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("connection %d of %d: %w", i+1, n, err)
				}
				conns[i] = nc
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	open := conns[:0]
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	return open, first
}

// oneRequest dials addr from src and makes one keep-alive GET /1k.
func oneRequest(addr string, src net.IP) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := getOn(nc); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// getOn makes one GET /1k on nc and reads the whole answer.
func getOn(nc net.Conn) error {
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = nc.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(nc, "GET /1k HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: proxybench\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(nc, 2048), nil)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK || n != 1<<10:
		return fmt.Errorf("status %d, %d body bytes", resp.StatusCode, n)
	case resp.Close:
		return fmt.Errorf("the proxy closes the connection after the response")
	}
	return nil
}

// checkAlive makes a second request on every step-th connection.
func checkAlive(conns []net.Conn, step int) error {
	for i := 0; i < len(conns); i += step {
		if err := getOn(conns[i]); err != nil {
			return fmt.Errorf("idle connection %d no longer answers: %w", i+1, err)
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
