package mesh

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/mesh"
)

// The fake ClusterIPs: ranges reserved for these tests, never served.
const (
	vipPrefix4 = "10.96.231."
	vipPrefix6 = "fd00:10:96:231::"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) to load and attach cgroup programs; run the tests as root")
	}
}

// testCgroup makes a cgroup v2 of the test's own, removed at the end.
// It returns its path and an open descriptor for CLONE_INTO_CGROUP.
func testCgroup(t testing.TB) (string, *os.File) {
	t.Helper()
	requireRoot(t)
	root, err := mesh.Cgroup2Mount()
	if err != nil {
		t.Skipf("SKIP: no cgroup v2 hierarchy on this host: %v", err)
	}
	dir, err := os.MkdirTemp(root, "rauta-mesh-test-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	removeCgroupAtEnd(t, dir, f)
	return dir, f
}

// removeCgroupAtEnd closes f and removes the cgroup dir when the test ends.
func removeCgroupAtEnd(t testing.TB, dir string, f *os.File) {
	t.Cleanup(func() {
		f.Close()
		// The children have exited; rmdir of a cgroup can still race the
		// kernel's release of their tasks for a moment.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.Remove(dir)
			if err == nil || os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("remove cgroup %s: %v", dir, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// openDatapath attaches the programs to cgroup, without pins.
func openDatapath(t testing.TB, cgroup string) (*mesh.Datapath, *mesh.Writer) {
	t.Helper()
	d, err := mesh.Open(mesh.Options{Cgroup: cgroup})
	if err != nil {
		t.Fatalf("open datapath: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(false); err != nil {
			t.Errorf("close datapath: %v", err)
		}
	})
	w, err := d.Writer()
	if err != nil {
		t.Fatal(err)
	}
	return d, w
}

// tcpServer answers every connection with its name and a newline, then
// echoes lines. It returns its address.
func tcpServer(t testing.TB, network, name string) netip.AddrPort {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "tcp6" {
		host = "[::1]:0"
	}
	ln, err := net.Listen(network, host)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := io.WriteString(c, name+"\n"); err != nil {
					return
				}
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := io.WriteString(c, name+":"+sc.Text()+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// udpServer answers every datagram with its name.
func udpServer(t testing.TB, network, name string) netip.AddrPort {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "udp6" {
		host = "[::1]:0"
	}
	c, err := net.ListenPacket(network, host)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo([]byte(name), from)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return netip.MustParseAddrPort(c.LocalAddr().String())
}

// runChild runs op in the cgroup (cg: its descriptor; nil runs it outside
// any test cgroup) and returns its results.
func runChild(t testing.TB, cg *os.File, op, addr string, count int) []result {
	t.Helper()
	cmd := childCmd(t, cg, op, addr, count)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s %s: %v\n%s", op, addr, err, out)
	}
	return decode(t, out)
}

func childCmd(t testing.TB, cg *os.File, op, addr string, count int) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childOp+"="+op, childAddr+"="+addr, fmt.Sprintf("%s=%d", childCount, count))
	cmd.Stderr = os.Stderr
	if cg != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	}
	return cmd
}

func decode(t testing.TB, out []byte) []result {
	t.Helper()
	var rs []result
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var r result
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("child output %q: %v", out, err)
		}
		rs = append(rs, r)
	}
	return rs
}

func frontend(addr string, p mesh.Proto) mesh.Frontend {
	a := netip.MustParseAddrPort(addr)
	return mesh.Frontend{Addr: a.Addr(), Port: a.Port(), Proto: p}
}
