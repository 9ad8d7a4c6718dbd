package main

import (
	"fmt"
	"strings"
	"time"
)

// report holds every probe's result per proxy.
type report struct {
	timeout time.Duration
	proxies []string
	probes  []probe
	cells   map[string]map[string]result // proxy -> probe -> result
	died    []string
	// rautaArgs are the flags added to rauta run's (-rauta-args).
	rautaArgs []string
}

// markdown renders the table: probe x proxy, totals, and dead processes.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Every timeout of every proxy set to %s (nginx: client_header/body, send, keepalive, proxy_*; HAProxy: http-request, client, server, connect, http-keep-alive; RAUTA: -read-header, -client-body, -client-send, -backend-response, -backend-idle, -idle-timeout); everything else at its default. HTTP/2 is h2c with prior knowledge.\n\n", r.timeout)
	if len(r.rautaArgs) > 0 {
		fmt.Fprintf(&b, "RAUTA run with `%s` added.\n\n", strings.Join(r.rautaArgs, " "))
	}
	b.WriteString("| probe | pass when |")
	for _, p := range r.proxies {
		fmt.Fprintf(&b, " %s |", p)
	}
	b.WriteString("\n|---|---|")
	for range r.proxies {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	passed := map[string]int{}
	ran := map[string]int{}
	group := ""
	for _, pr := range r.probes {
		if pr.group != group {
			group = pr.group
			fmt.Fprintf(&b, "| **%s** | |%s\n", group, strings.Repeat(" |", len(r.proxies)))
		}
		fmt.Fprintf(&b, "| %s | %s |", pr.name, esc(pr.pass))
		for _, p := range r.proxies {
			res, ok := r.cells[p][pr.name]
			if !ok {
				b.WriteString(" – |")
				continue
			}
			ran[p]++
			v := "**FAIL**"
			if res.pass {
				v = "pass"
				passed[p]++
			}
			fmt.Fprintf(&b, " %s: %s |", v, esc(res.what))
		}
		b.WriteString("\n")
	}
	b.WriteString("| **passed** | |")
	for _, p := range r.proxies {
		fmt.Fprintf(&b, " **%d / %d** |", passed[p], ran[p])
	}
	b.WriteString("\n\n")
	if len(r.died) == 0 {
		b.WriteString("No proxy process died or logged a panic.\n")
	} else {
		for _, d := range r.died {
			fmt.Fprintf(&b, "- process died: %s\n", d)
		}
	}
	return b.String()
}

func esc(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
