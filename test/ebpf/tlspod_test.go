package ebpf

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/mesh"
	"github.com/false-systems/rauta/internal/observe"
	"github.com/false-systems/rauta/internal/observe/enrich"
)

// podCgroup makes cgroup v2 directory path (and its missing parents)
// under the cgroup2 mount; t.Cleanup kills what still runs in it and
// removes it, innermost first.
func podCgroup(t *testing.T, root string, path ...string) string {
	t.Helper()
	dir := root
	for _, p := range path {
		dir = filepath.Join(dir, p)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dir := dir // this level's, for its cleanup
		t.Cleanup(func() {
			_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0o644)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				err := unix.Rmdir(dir)
				if err == nil || errors.Is(err, unix.ENOENT) {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("remove cgroup %s: %v", dir, err)
					return
				}
			}
		})
	}
	return dir
}

// TestTLSPlaintextAttributedToPodByCgroup: curl (OpenSSL) runs in a pod
// cgroup laid out as the devcluster's node agent makes them
// (rauta-devcluster-<bridge>/pod-<fnv of the UID>), the Go crypto/tls
// server in one laid out as a kubelet's cgroupfs driver makes them
// (kubepods/besteffort/pod<UID>). The enrichment knows both pods only by
// UID, at addresses that carry no traffic, so nothing but the cgroup can
// name them: every exchange curl's plaintext gives is labelled with
// curl's pod and namespace, every one the server's gives with the
// server's, and the server address itself resolves to no pod.
func TestTLSPlaintextAttributedToPodByCgroup(t *testing.T) {
	tp := newTopology(t)
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		t.Skip("SKIP: curl not installed")
	}
	root, err := mesh.Cgroup2Mount()
	if err != nil {
		t.Skipf("SKIP: no cgroup2 mount: %v", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	tag := hex.EncodeToString(rnd[:])
	const clientUID, serverUID = "6c1f0e2a-9b3d-4e5f-8a7b-0c1d2e3f4a5b", "d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f70"
	clientCg := podCgroup(t, root, "rauta-devcluster-obs"+tag, enrich.DevclusterPodKey(clientUID))
	serverCg := podCgroup(t, root, "rauta-obs-test-"+tag, "kubepods", "besteffort", "pod"+serverUID)

	// 10.244.220.0/24: addresses no packet of the test carries.
	enrichFile := filepath.Join(t.TempDir(), "enrich.yaml")
	if err := os.WriteFile(enrichFile, fmt.Appendf(nil, `endpoints:
- {ip: 10.244.220.5, pod: curl-7f9c, namespace: clients, uid: %s}
- {ip: 10.244.220.6, pod: tls-server-0, namespace: shop, uid: %s}
`, clientUID, serverUID), 0o644); err != nil {
		t.Fatal(err)
	}
	o := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.TLS.Enabled = true
		c.TLS.ScanInterval = 200 * time.Millisecond
		c.EnrichFile = enrichFile
	})
	addr, serverPID := startGoTLSChildIn(t, tp, 8443, serverCg)
	want := map[string]bool{}
	var urls []string
	for i := range 6 {
		target := fmt.Sprintf("/status/200?id=pod%d", i)
		want[target] = true
		urls = append(urls, "https://"+addr+target)
	}
	curlInCgroup(t, tp, clientCg, nil, urls)

	var recs []tlsRecord
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		recs = recs[:0]
		for _, r := range o.out.tlsRecords(t) {
			if want[r.Target] {
				recs = append(recs, r)
			}
		}
		if len(recs) >= 2*len(want) {
			break
		}
	}
	if len(recs) != 2*len(want) {
		t.Fatalf("%d exchanges of the test's requests, want %d (each from curl and from the server): %+v", len(recs), 2*len(want), recs)
	}
	for _, r := range recs {
		var pod, ns string
		switch {
		case r.Process == "curl":
			pod, ns = "curl-7f9c", "clients"
		case r.PID == uint32(serverPID):
			pod, ns = "tls-server-0", "shop"
		default:
			t.Errorf("%s reported by process %q pid %d, want curl or the server (pid %d)", r.Target, r.Process, r.PID, serverPID)
			continue
		}
		if r.ProcessPod != pod || r.ProcessNamespace != ns || r.Scheme != "https" {
			t.Errorf("%s from %s: process pod %s/%s (scheme %s), want %s/%s", r.Target, r.Process, r.ProcessNamespace, r.ProcessPod, r.Scheme, ns, pod)
		}
		if r.Pod != "" || !strings.HasPrefix(r.Server, tp.serverIP+":") {
			t.Errorf("%s: server %s resolved to pod %q, want no pod (its address is not in the enrichment)", r.Target, r.Server, r.Pod)
		}
	}
	if v := o.metric(t, "rauta_observer_tls_cgroup_unread_total", ""); v != 0 {
		t.Errorf("rauta_observer_tls_cgroup_unread_total %v, want 0", v)
	}
	o.stop(t)
}
