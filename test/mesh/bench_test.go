package mesh

import (
	"net/netip"
	"os/exec"
	"strconv"
	"testing"
	"time"

	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

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

// BenchmarkGAMMARequest is the cost of the mesh proxy hop: GET requests
// from a child in the cgroup to a ClusterIP whose Service has a producer
// HTTPRoute (steered through the agent's proxy), and to one without
// (straight to the endpoint), on one keep-alive connection and on a new
// connection each. ns/request is the child's wall time per request.
//
//	go test ./test/mesh/ -run '^$' -bench GAMMARequest -benchtime 2000x -count 6
func BenchmarkGAMMARequest(b *testing.B) {
	cgroup, cg := testCgroup(b)
	ep := httpEcho(b, "ep")
	const routed, direct = "10.96.232.20", "10.96.232.21"
	kube := gammaAPI(gammaService("routed", routed), gammaService("direct", direct),
		gammaSlice("routed-a", "routed", map[string]uint16{"http": ep.Port()}),
		gammaSlice("direct-a", "direct", map[string]uint16{"http": ep.Port()}))
	gw := gwfake.NewClientset(selfRoute("routed"))
	ag := startAgent(b, mesh.Config{
		Cgroup: cgroup, AdminAddr: freePort(b), LogLevel: "error", ProxyAddr: "127.0.0.1:0",
		HoldOff: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
	}, mesh.Clients{Kube: kube, Gateway: gw})
	ag.waitState("the routed Service steered", func(st mesh.State) bool {
		return st[frontend(routed+":80", mesh.TCP)].Steer && len(st[frontend(direct+":80", mesh.TCP)].Backends) == 1
	})
	for _, conn := range []struct{ name, header string }{{"keepalive", ""}, {"newconn", "Connection: close"}} {
		for _, to := range []struct{ name, vip string }{{"direct", direct}, {"mesh", routed}} {
			b.Run(conn.name+"/"+to.name, func(b *testing.B) {
				cmd := childCmd(b, cg, "http-loop", to.vip+":80", b.N)
				cmd.Env = append(cmd.Env, childHeader+"="+conn.header)
				reportPerRequest(b, cmd)
			})
		}
	}
}

// reportPerRequest runs a timing child (its Name is ns per request) and
// reports that as ns/request.
func reportPerRequest(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	r := decode(b, out)[0]
	if r.Err != "" || r.Errno != "" {
		b.Fatalf("%s%s", r.Errno, r.Err)
	}
	ns, _ := strconv.ParseFloat(r.Name, 64)
	b.ReportMetric(ns, "ns/request")
}
