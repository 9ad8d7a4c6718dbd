package mesh

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/false-systems/rauta/bpf"
	"github.com/false-systems/rauta/internal/mesh"
)

// sockmap tests: the client pod's address and the Services' ClusterIPs
// come from 127.0.241.0/24 and 10.96.241.0/24.
const (
	smPodIP     = "127.0.241.2"
	smRouted    = "10.96.241.10"
	smDirect    = "10.96.241.11"
	childSize   = "RAUTA_MESH_TEST_SIZE"
	childRounds = "RAUTA_MESH_TEST_ROUNDS"
)

// joinCgroup moves the test process into the test's cgroup until the test
// ends, so that the sockops program also sees the sockets of the agent's
// proxy and of the endpoints (in a node, the agent's -cgroup is the root,
// which holds both the pods and the agent).
func joinCgroup(t testing.TB, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	root, err := mesh.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	// cgroup v2: one line "0::/path".
	line := strings.TrimSpace(string(b))
	i := strings.LastIndex(line, "::")
	if i < 0 {
		t.Fatalf("/proc/self/cgroup: %q", line)
	}
	orig := filepath.Join(root, line[i+2:])
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		t.Fatalf("join cgroup %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(orig, "cgroup.procs"), pid, 0); err != nil {
			t.Errorf("back to cgroup %s: %v", orig, err)
		}
	})
}

// bodyEcho answers every request with its body, read whole first: net/http's
// HTTP/1 server closes a request body it is still reading once the
// response starts (no full duplex), which io.Copy(w, r.Body) runs into.
func bodyEcho(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write(b)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// pattern is size bytes that differ by connection, request and offset, so
// a lost, repeated or misplaced chunk changes what comes back.
func pattern(conn, req, size int) []byte {
	b := make([]byte, size)
	x := uint32(conn*7919 + req*104729 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// echoPosts is the "echo-post" child: conns connections at once, each
// sending rounds POSTs of size bytes (from source, on one keep-alive
// connection or, with newConn, a connection each) and comparing the answer
// byte for byte. One result per connection: Name "ok", or Err.
func echoPosts(addr, source string, conns, rounds, size int, newConn bool) []result {
	out := make([]result, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			d := &net.Dialer{Timeout: 5 * time.Second}
			if source != "" {
				d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
			}
			tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: newConn, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for r := range rounds {
				body := pattern(c, r, size)
				resp, err := cl.Post("http://"+addr+"/", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					failure(&out[c], err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					out[c].Err = fmt.Sprintf("round %d: status %d, %v", r, resp.StatusCode, err)
					return
				}
				if !bytes.Equal(got, body) {
					out[c].Err = fmt.Sprintf("round %d: %d bytes back for %d sent, first difference at %d", r, len(got), len(body), firstDiff(got, body))
					return
				}
			}
			out[c].Name = "ok"
		})
	}
	wg.Wait()
	return out
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// postLoop is the "post-loop" child: n POSTs of size bytes, timed as a
// whole; Name is ns per request.
func postLoop(addr string, n, size int, newConn bool) result {
	var r result
	tr := &http.Transport{DisableKeepAlives: newConn, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	body := pattern(0, 0, size)
	start := time.Now()
	for range n {
		resp, err := c.Post("http://"+addr+"/", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			failure(&r, err)
			return r
		}
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || m != int64(size) {
			r.Err = fmt.Sprintf("status %d, %d bytes, %v", resp.StatusCode, m, err)
			return r
		}
	}
	r.Name = strconv.FormatInt(time.Since(start).Nanoseconds()/int64(n), 10)
	return r
}

// sockmapAgent starts an agent (sockmap on or off) with the proxy on
// 127.0.0.1, a Service routed through it and one not, both to ep, and the
// client pod smPodIP; it returns the agent and its admin address.
func sockmapAgent(t testing.TB, cgroup string, ep netip.AddrPort, on bool) (*agent, string) {
	t.Helper()
	kube := gammaAPI(gammaService("routed", smRouted), gammaService("direct", smDirect),
		gammaSlice("routed-a", "routed", map[string]uint16{"http": ep.Port()}),
		gammaSlice("direct-a", "direct", map[string]uint16{"http": ep.Port()}),
		pod("client", smPodIP))
	admin := freePort(t)
	ag := startAgent(t, mesh.Config{
		Cgroup: cgroup, AdminAddr: admin, LogLevel: "error", ProxyAddr: "127.0.0.1:0", Sockmap: on,
		HoldOff: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
	}, mesh.Clients{Kube: kube, Gateway: gwfake.NewClientset(selfRoute("routed"))})
	ag.waitState("the routed Service steered", func(st mesh.State) bool {
		return st[frontend(smRouted+":80", mesh.TCP)].Steer && len(st[frontend(smDirect+":80", mesh.TCP)].Backends) == 1
	})
	return ag, admin
}

var sockmapMetric = regexp.MustCompile(`(?m)^rauta_mesh_sockmap_total\{result="(\w+)"\} (\d+)$`)

func sockmapCounters(t *testing.T, admin string) map[string]int {
	t.Helper()
	_, body := get(t, "http://"+admin+"/metrics")
	out := map[string]int{}
	for _, m := range sockmapMetric.FindAllStringSubmatch(body, -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(out) != 3 {
		t.Fatalf("rauta_mesh_sockmap_total: %v in\n%s", out, body)
	}
	return out
}

// echoChild runs the "echo-post" child and fails the test unless every
// connection got back exactly what it sent.
func echoChild(t *testing.T, cg *os.File, vip string, conns, rounds, size int, newConn bool) {
	t.Helper()
	cmd := childCmd(t, cg, "echo-post", vip+":80", conns)
	cmd.Env = append(cmd.Env, childSource+"="+smPodIP, childSize+"="+strconv.Itoa(size), childRounds+"="+strconv.Itoa(rounds))
	if newConn {
		cmd.Env = append(cmd.Env, childHeader+"=Connection: close")
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	rs := decode(t, out)
	if len(rs) != conns {
		t.Fatalf("%d results for %d connections", len(rs), conns)
	}
	for i, r := range rs {
		if r.Name != "ok" {
			t.Errorf("connection %d to %s (%d x %d bytes): %s%s", i, vip, rounds, size, r.Errno, r.Err)
		}
	}
}

// TestSockmapRedirect: with -sockmap, requests through the mesh proxy
// (client pod -> proxy -> endpoint, every socket on a local address) come
// back byte for byte, also 1 MiB bodies and 32 connections at once, and the
// payload went socket to socket (redirected counter). New connections
// after closed ones (whose entries must have left the sockhash) work the
// same. Without -sockmap nothing is redirected.
func TestSockmapRedirect(t *testing.T) {
	cgroup, cg := testCgroup(t)
	joinCgroup(t, cgroup)
	ep := bodyEcho(t)

	t.Run("on", func(t *testing.T) {
		ag, admin := sockmapAgent(t, cgroup, ep, true)
		before := sockmapCounters(t, admin)
		echoChild(t, cg, smRouted, 1, 2, 1<<20, false)
		mid := sockmapCounters(t, admin)
		if mid["added"]-before["added"] < 2 || mid["redirected"]-before["redirected"] < 32 {
			t.Fatalf("1 MiB through the proxy: sockmap counters %v -> %v, want sockets added and messages redirected", before, mid)
		}
		echoChild(t, cg, smRouted, 32, 4, 64<<10, false)
		// Each of these connections closes after one request: their
		// sockhash entries must be gone, else the next connection of the
		// same 4-tuple could not enter the sockhash and its peer would
		// send into the closed socket.
		echoChild(t, cg, smRouted, 8, 50, 4<<10, true)
		echoChild(t, cg, smDirect, 8, 4, 64<<10, false)
		after := sockmapCounters(t, admin)
		if after["redirected"] <= mid["redirected"] {
			t.Errorf("no redirected messages in the later rounds: %v -> %v", mid, after)
		}
		// The children have exited: no socket of the client pod's
		// address may be left in the sockhash.
		sockhash := agentSockhash(t, cgroup)
		// The proxy's pooled connections to the endpoint stay open: they
		// show that the entries are read right.
		if n := podSockets(t, sockhash, "127.0.0.1"); n == 0 {
			t.Error("no socket of 127.0.0.1 (the proxy, the endpoint) in the sockhash")
		}
		deadline := time.Now().Add(10 * time.Second)
		for n := podSockets(t, sockhash, smPodIP); n != 0; n = podSockets(t, sockhash, smPodIP) {
			if time.Now().After(deadline) {
				t.Fatalf("%d sockets of the client pod still in the sockhash after its connections closed", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		sockhash.Close()
		t.Logf("sockmap counters: %v", after)
		ag.shutdown()
	})
	t.Run("off", func(t *testing.T) {
		ag, admin := sockmapAgent(t, cgroup, ep, false)
		echoChild(t, cg, smRouted, 4, 2, 1<<20, false)
		if c := sockmapCounters(t, admin); c["added"] != 0 || c["redirected"] != 0 {
			t.Errorf("sockmap off: counters %v, want nothing added or redirected", c)
		}
		ag.shutdown()
	})
}

// BenchmarkSockmapRequest is the mesh hop's cost with and without sockmap:
// POST requests (1 KiB and 64 KiB, echoed back) from a child in the cgroup
// to a ClusterIP routed through the agent's proxy (mesh) and to one that
// is not (direct), on one keep-alive connection and on a new connection
// each. The test process joins the cgroup, so the proxy's and the
// endpoint's sockets are seen by sockops as in a node. Sub-benchmarks run
// sockmap on, then off, so -count alternates them. ns/request is the
// child's wall time per request; the hop's added latency is mesh minus
// direct.
//
//	go test ./test/mesh/ -run '^$' -bench SockmapRequest -benchtime 1000x -count 6
func BenchmarkSockmapRequest(b *testing.B) {
	cgroup, cg := testCgroup(b)
	joinCgroup(b, cgroup)
	ep := bodyEcho(b)
	for _, on := range []bool{true, false} {
		b.Run("sockmap="+strconv.FormatBool(on), func(b *testing.B) {
			ag, _ := sockmapAgent(b, cgroup, ep, on)
			defer ag.shutdown()
			for _, conn := range []struct{ name, header string }{{"keepalive", ""}, {"newconn", "Connection: close"}} {
				for _, size := range []int{1 << 10, 64 << 10} {
					for _, to := range []struct{ name, vip string }{{"direct", smDirect}, {"mesh", smRouted}} {
						b.Run(fmt.Sprintf("%s/%dKiB/%s", conn.name, size>>10, to.name), func(b *testing.B) {
							cmd := childCmd(b, cg, "post-loop", to.vip+":80", b.N)
							cmd.Env = append(cmd.Env, childHeader+"="+conn.header, childSize+"="+strconv.Itoa(size))
							reportPerRequest(b, cmd)
						})
					}
				}
			}
		})
	}
}

// sockopsProgram is the sockops program attached to cgroup (exactly one).
func sockopsProgram(t *testing.T, cgroup string) *ebpf.ProgramInfo {
	t.Helper()
	f, err := os.Open(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupSockOps})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Programs) != 1 {
		t.Fatalf("%d sockops programs attached, want 1", len(res.Programs))
	}
	p, err := ebpf.NewProgramFromID(res.Programs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestSockmapRestart: an agent with sockmap that dies (its pins kept, as
// a SIGKILL leaves them) leaves the sockmap sockops program attached and
// its sockhash alive; the next agent without sockmap swaps in the plain
// program, after which the old sockhash (holding no sockets here) and the
// sk_msg program on it are freed; a clean exit detaches everything.
func TestSockmapRestart(t *testing.T) {
	cgroup, _ := testCgroup(t)
	pins := bpffs(t)
	d1, err := mesh.Open(mesh.Options{Cgroup: cgroup, PinDir: pins, Sockmap: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(true); err != nil {
		t.Fatal(err)
	}
	info := sockopsProgram(t, cgroup)
	if info.Name != "mesh_sockops_sockmap" {
		t.Fatalf("after a killed sockmap agent: sockops program %q, want the sockmap one", info.Name)
	}
	var sockhash ebpf.MapID
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			t.Fatal(err)
		}
		if mi, err := m.Info(); err == nil && mi.Type == ebpf.SockHash {
			sockhash = id
		}
		m.Close()
	}
	if sockhash == 0 {
		t.Fatal("the sockmap sockops program uses no sockhash")
	}

	d2, err := mesh.Open(mesh.Options{Cgroup: cgroup, PinDir: pins, Sockmap: false})
	if err != nil {
		t.Fatal(err)
	}
	if info := sockopsProgram(t, cgroup); info.Name != "mesh_sockops" {
		t.Errorf("after a restart without sockmap: sockops program %q, want mesh_sockops", info.Name)
	}
	waitMapFreed(t, sockhash, "the killed agent's sockhash, after the restart")
	if err := d2.Close(false); err != nil {
		t.Fatal(err)
	}
	if n := attachedPrograms(t, cgroup, ebpf.AttachCGroupSockOps); n != 0 {
		t.Errorf("after a clean exit: %d sockops programs attached", n)
	}
}

// agentSockhash is the sockhash of the sockops program attached to cgroup.
func agentSockhash(t *testing.T, cgroup string) *ebpf.Map {
	t.Helper()
	ids, _ := sockopsProgram(t, cgroup).MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			t.Fatal(err)
		}
		if mi, err := m.Info(); err == nil && mi.Type == ebpf.SockHash {
			return m
		}
		m.Close()
	}
	t.Fatal("the sockops program uses no sockhash")
	return nil
}

// podSockets counts the sockhash entries with addr at either end.
func podSockets(t *testing.T, m *ebpf.Map, addr string) int {
	t.Helper()
	a := netip.MustParseAddr(addr).As16()
	var want [4]uint32
	for i := range want {
		want[i] = binary.NativeEndian.Uint32(a[4*i:])
	}
	n := 0
	var k bpf.MeshSockKey
	for it := m.Iterate(); it.Next(&k, new(uint64)); {
		if k.Local == want || k.Remote == want {
			n++
		}
	}
	return n
}

// TestSockmapExitKeepsConnections: an agent with sockmap exits (cleanly:
// everything detached) while a redirected connection has unread data. The
// connection's sockets stay in the old sockhash, which lives on, and
// redirected, until they close: nothing queued is lost, later writes
// arrive in order, and the sockhash is freed once the sockets closed.
// (Taking the sockets out of the sockhash instead drops the queued data:
// tried, the read then times out.)
func TestSockmapExitKeepsConnections(t *testing.T) {
	cgroup, _ := testCgroup(t)
	joinCgroup(t, cgroup)
	d, err := mesh.Open(mesh.Options{Cgroup: cgroup, Sockmap: true})
	if err != nil {
		t.Fatal(err)
	}
	const srvIP, cliIP = "127.0.241.3", "127.0.241.4"
	if err := d.SetLocal([]netip.Addr{netip.MustParseAddr(srvIP), netip.MustParseAddr(cliIP)}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", srvIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(cliIP)}}
	c, err := dl.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	first, second := pattern(1, 0, 48<<10), pattern(1, 1, 48<<10)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.SockAdded < 2 || st.Redirected == 0 {
		t.Fatalf("before the exit: %+v, want both sockets added and the write redirected", st)
	}
	sh := agentSockhash(t, cgroup)
	mi, err := sh.Info()
	sh.Close()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := mi.ID()
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	if n := attachedPrograms(t, cgroup, ebpf.AttachCGroupSockOps); n != 0 {
		t.Errorf("after the exit: %d sockops programs attached", n)
	}
	if _, err := c.Write(second); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(first)+len(second))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatalf("read after the exit: %v", err)
	}
	if want := append(first, second...); !bytes.Equal(got, want) {
		t.Fatalf("after the exit: first difference at byte %d of %d", firstDiff(got, want), len(want))
	}
	c.Close()
	s.Close()
	waitMapFreed(t, id, "the sockhash, after its sockets closed")
}

// waitMapFreed waits until the map id no longer exists (the kernel frees a
// map after its last user asynchronously), at most 10 s.
func waitMapFreed(t *testing.T, id ebpf.MapID, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			return
		}
		m.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s (map id %d) still exists after 10s", what, id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
