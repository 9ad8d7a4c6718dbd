// Package harness runs `rauta controller` as a real process against a local
// cluster and talks to it the way a user would: HTTP through the Gateway
// address, /metrics on the admin port. The integration tests and the
// propagation benchmark share it.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/false-systems/rauta/internal/freeport"
)

// BuildRauta builds cmd/rauta from repoRoot into dir and returns the binary's path.
func BuildRauta(ctx context.Context, repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "rauta")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/rauta")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/rauta: %w\n%s", err, out)
	}
	return bin, nil
}

// ControllerConfig is one replica's command line.
type ControllerConfig struct {
	Binary      string
	Kubeconfig  string
	AddressPool string
	// ControllerName isolates this controller's GatewayClass from others'
	// running against the same cluster.
	ControllerName string
	LeaseName      string
	Identity       string
	// HoldOff and MaxDelay: zero keeps the command's defaults.
	HoldOff, MaxDelay time.Duration
	// LogPath receives stdout and stderr.
	LogPath string
}

// Controller is a running `rauta controller` process.
type Controller struct {
	Identity  string
	AdminAddr string
	logPath   string
	cmd       *exec.Cmd
	logFile   *os.File
	done      chan struct{}
	waitErr   error
	stopOnce  sync.Once
}

// StartController starts a replica and waits until its admin endpoint answers.
func StartController(ctx context.Context, cfg ControllerConfig) (*Controller, error) {
	admin, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	args := []string{"controller",
		"-provisioner", "inprocess",
		"-kubeconfig", cfg.Kubeconfig,
		"-address-pool", cfg.AddressPool,
		"-admin-addr", admin,
		// No probe server (replicas would share its port), no drain period
		// (Stop's grace is short).
		"-metrics-addr=",
		"-drain-period=0s",
		"-lease-namespace", "default",
		"-lease-name", cfg.LeaseName,
		"-identity", cfg.Identity,
		"-controller-name", cfg.ControllerName,
		"-access-log=false",
		"-log-level", "debug",
	}
	if cfg.HoldOff > 0 {
		args = append(args, "-hold-off", cfg.HoldOff.String())
	}
	if cfg.MaxDelay > 0 {
		args = append(args, "-max-delay", cfg.MaxDelay.String())
	}
	logFile, err := os.OpenFile(cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("controller log: %w", err)
	}
	// Not CommandContext: the caller decides when to stop (SIGTERM, or
	// SIGKILL to simulate a crash), and always reaps through Stop or Kill.
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Die with the test process even if it is killed before its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Binary, err)
	}
	c := &Controller{Identity: cfg.Identity, AdminAddr: admin, logPath: cfg.LogPath, cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() { c.waitErr = cmd.Wait(); close(c.done) }()
	if err := c.waitHealthy(ctx, 30*time.Second); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

func (c *Controller) waitHealthy(ctx context.Context, within time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return fmt.Errorf("controller %s exited during start-up: %w", c.Identity, c.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + c.AdminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz: %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("controller %s not healthy within %s: %w", c.Identity, within, last)
}

// Stop sends SIGTERM and reaps the process, killing it after grace. It
// returns the exit error unless the process ended because of the signal
// handling it was asked for (a clean exit).
func (c *Controller) Stop(grace time.Duration) error {
	var err error
	c.stopOnce.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
			err = c.waitErr
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.done
			err = fmt.Errorf("controller %s did not exit within %s of SIGTERM; killed", c.Identity, grace)
		}
		c.logFile.Close()
	})
	return err
}

// Kill ends the process with SIGKILL (a crash: no Lease release) and reaps it.
func (c *Controller) Kill() {
	c.stopOnce.Do(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		c.logFile.Close()
	})
}

// Exited reports whether the process has ended.
func (c *Controller) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// LogTail returns at most the last n bytes of the controller's log.
func (c *Controller) LogTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", c.logPath, err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// LogContains reports whether the log holds s.
func (c *Controller) LogContains(s string) bool {
	b, err := os.ReadFile(c.logPath)
	return err == nil && bytes.Contains(b, []byte(s))
}

// freeLoopbackPort returns 127.0.0.1:PORT with a port free a moment ago,
// outside the ephemeral range (internal/freeport).
func freeLoopbackPort() (string, error) {
	p, err := freeport.Port()
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// ErrNoSample is returned by Metric when the metric is not exposed.
var ErrNoSample = errors.New("metric not exposed")
