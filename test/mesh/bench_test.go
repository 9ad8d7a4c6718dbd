package mesh

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/false-systems/rauta/internal/mesh"
)

// BenchmarkConnect is the cost of a TCP connect and close from a process
// in an attached cgroup: to a ClusterIP (translated by connect4), and to
// the endpoint's own address (the program runs, finds no frontend). The
// loop runs in the child; ns/op is its wall time per connect.
//
//	go test ./test/mesh/ -run '^$' -bench Connect -benchtime 5000x
func BenchmarkConnect(b *testing.B) {
	cgroup, cg := testCgroup(b)
	_, w := openDatapath(b, cgroup)
	ep := tcpServer(b, "tcp4", "ep")
	vip := vipPrefix4 + "8:80"
	// 100 frontends, so the lookup is in a populated map.
	st := mesh.State{frontend(vip, mesh.TCP): {Backends: []netip.AddrPort{ep}}}
	for i := range 100 {
		st[frontend(vipPrefix4+strconv.Itoa(100+i)+":80", mesh.TCP)] = mesh.Entry{Backends: []netip.AddrPort{ep}}
	}
	if err := w.Apply(st); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, addr string }{{"ClusterIP", vip}, {"direct", ep.String()}} {
		b.Run(bc.name, func(b *testing.B) {
			r := runChild(b, cg, "connect-loop", bc.addr, b.N)[0]
			if r.Err != "" || r.Errno != "" {
				b.Fatalf("%s%s", r.Errno, r.Err)
			}
			ns, _ := strconv.ParseFloat(r.Name, 64)
			b.ReportMetric(ns, "ns/connect")
		})
	}
}
