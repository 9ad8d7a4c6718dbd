package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The upload cell is part of the full run and of -quick, under its name.
func TestUploadCell(t *testing.T) {
	if got, want := uploadCell.name(), "h1 upload 100k c=16"; got != want {
		t.Errorf("upload cell is named %q, want %q", got, want)
	}
	if !slices.Contains(defaultCells, uploadCell) || !slices.Contains(quickCells, uploadCell) {
		t.Error("the upload cell is not in the full run or not in -quick")
	}
	if uploadCell.path() != uploadPath || uploadCell.answerSize(nil) != len(uploadAnswer) || uploadCell.caption() == "" {
		t.Errorf("upload cell asks for %s and expects %d bytes", uploadCell.path(), uploadCell.answerSize(nil))
	}
	get := cell{Proto: "h1", Conns: 64, Body: "64k"}
	if get.path() != "/64k" || get.answerSize(map[string][]byte{"64k": make([]byte, 65536)}) != 65536 || get.scriptFile() != "summary.lua" || get.caption() != "" {
		t.Error("a GET cell changed its path, answer size, script or caption")
	}
}

func TestUploadScript(t *testing.T) {
	s := uploadScript(uploadSize)
	for _, want := range []string{`wrk.method = "POST"`, `wrk.body = string.rep("0123456789", 10000) .. string.rep("x", 0)`,
		`wrk.headers["Content-Type"] = "application/octet-stream"`, "done = function", "WRKRESULT"} {
		if !strings.Contains(s, want) {
			t.Errorf("upload script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "request = function") {
		t.Error("upload script builds every request in Lua; it must stay static")
	}
	if b := uploadBody(15); string(b) != "0123456789xxxxx" || len(uploadBody(uploadSize)) != uploadSize {
		t.Errorf("uploadBody(15) = %q", b)
	}
	e := &env{dir: t.TempDir()}
	if err := e.writeWrkScripts(quickCells); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"summary.lua", "upload-100000.lua"} {
		if _, err := os.Stat(e.path(f)); err != nil {
			t.Errorf("writeWrkScripts: %v", err)
		}
	}
}

// Every proxy must take a 100 KB body: nginx buffers it in memory, HAProxy
// and Caddy keep their defaults (no limit, no request buffering).
func TestUploadConfigs(t *testing.T) {
	e := &env{dir: t.TempDir()}
	if n := strings.Count(e.backendConfig(), "location = "+uploadPath+" {"); n != endpoints {
		t.Errorf("backend has the upload location on %d endpoints, want %d", n, endpoints)
	}
	ngx := e.nginxConfig()
	for _, want := range []string{"client_max_body_size 1m;", "client_body_buffer_size 128k;"} {
		if !strings.Contains(ngx, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
	if strings.Contains(ngx, "proxy_request_buffering") {
		t.Error("nginx config changes the default request buffering")
	}
	if strings.Contains(e.haproxyConfig(), "http-buffer-request") || strings.Contains(e.caddyConfig(), "request_body") {
		t.Error("HAProxy or Caddy buffers or limits request bodies")
	}
}

// TestBackendReadsWholeUpload pins why the backend does not simply
// "return 200": nginx then answers before the body has arrived, and a
// proxy gets the answer while it is still sending the body. The backend's
// upload location must answer only after the last byte, and take wrk's
// upload script (skipped where nginx or wrk is not installed).
func TestBackendReadsWholeUpload(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx not installed")
		}
	}
	// Workers run unprivileged and must reach the root, as in bench():
	// t.TempDir's parent is not searchable by them.
	dir, err := os.MkdirTemp("", "proxybench-upload-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir}
	if err := e.writeBodies(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf, err := e.write("upload.conf", e.nginxCommon("backend")+
		fmt.Sprintf("  server {\n    listen %s;\n    root %s;\n%s  }\n}\n", addr, e.path("www"), backendUploadLocations()))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", e.path("nginx-error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	var c net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s: %v; log: %s", addr, err, fileTail(e.path("nginx-error.log"), 400))
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()

	body := uploadBody(uploadSize)
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", uploadPath, len(body))
	if _, err := c.Write(append([]byte(head), body[:len(body)/2]...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 512)); n > 0 || !os.IsTimeout(err) {
		t.Fatalf("backend answered (%d bytes, %v) with half the body still to come", n, err)
	}
	if _, err := c.Write(body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 512)
	for !bytes.HasSuffix(got, []byte("\r\n\r\n"+uploadAnswer)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("answer after the whole body: %q: %v", got, err)
		}
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) {
		t.Fatalf("answer after the whole body: %q", got)
	}

	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk not installed: the upload script is not run")
	}
	script, err := e.write("upload.lua", uploadScript(uploadSize))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t1", "-c2", "-d1s", "--timeout", "5s", "-s", script, "http://"+addr+uploadPath).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v: %s", err, out)
	}
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.check(uploadCell.answerSize(nil)); err != nil {
		t.Errorf("wrk upload run: %v (%s)", err, r.RawSummary)
	}
}
