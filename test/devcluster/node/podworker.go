package node

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/false-systems/rauta/test/devcluster/internal/spawn"
)

// workerDeps is what every pod worker shares with the agent.
type workerDeps struct {
	client   kubernetes.Interface
	net      *network
	images   []ImageMapping
	stateDir string
	hostIP   string
	getPod   func(namespace, name string) (*corev1.Pod, bool)
	refs     refSource
	spawner  *spawn.Spawner
	// imageSpawner starts image containers, with no_new_privs.
	imageSpawner *spawn.Spawner
	store        *imageStore
	tokens       tokenRequester
	cgroups      *cgroups
	execs        *execTargets
	// clusterDNS and clusterDomain make image containers' /etc/resolv.conf.
	clusterDNS, clusterDomain string
	// apiService is the default/kubernetes Service's ClusterIP; invalid
	// without a Service CIDR.
	apiService netip.Addr
}

// podError is a reason the pod cannot run; retry says whether trying again later may help
// (a ConfigMap created after the pod) or not (an unknown image).
type podError struct {
	reason, message string
	retry           bool
}

func (e *podError) Error() string { return e.reason + ": " + e.message }

// probeEvent reports a readiness change of one run of one container.
type probeEvent struct {
	index, pid int
	ready      bool
}

// Timing of the worker loop.
const (
	tickInterval       = time.Second
	configRetry        = 5 * time.Second
	statusWriteTimeout = 5 * time.Second
	shutdownGrace      = 2 * time.Second
	maxGrace           = 30 * time.Second
	killWait           = 5 * time.Second
)

// podWorker runs one pod from first sight to removal. All its state is owned by the
// goroutine running run; other goroutines talk to it through channels.
type podWorker struct {
	deps *workerDeps
	pod  *corev1.Pod

	netnsName string
	pn        *podNetwork
	// cgroupDir is the pod's cgroup v2 folder, made at the first prepare.
	cgroupDir string
	podIP     string
	startTime time.Time

	containers  []*container
	probeCancel []context.CancelFunc
	// volumes hold the pod's volume contents; hostVolumes their host copies for binary
	// containers; tokens the projected service-account tokens to keep fresh.
	volumes     map[string]*volumeData
	hostVolumes map[string]string
	tokens      []*projectedToken
	prepared    bool
	failure     *podError
	nextPrepare time.Time
	dirty       bool

	exits  chan exitEvent
	probes chan probeEvent
	stopCh chan time.Duration
	done   chan struct{}
}

func newPodWorker(deps *workerDeps, pod *corev1.Pod) *podWorker {
	return &podWorker{
		deps:   deps,
		pod:    pod.DeepCopy(),
		exits:  make(chan exitEvent, 16),
		probes: make(chan probeEvent, 16),
		stopCh: make(chan time.Duration, 1),
		done:   make(chan struct{}),
	}
}

// terminate asks the worker to stop the pod with the given grace period, then delete the
// pod object. It does not block.
func (w *podWorker) terminate(grace time.Duration) {
	select {
	case w.stopCh <- grace:
	default:
	}
}

func (w *podWorker) run(ctx context.Context) {
	defer close(w.done)
	w.startTime = time.Now()
	w.tryPrepare(ctx)
	w.writeStatus(ctx)
	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	for {
		select {
		case ev := <-w.exits:
			w.onExit(ev)
		case pe := <-w.probes:
			if c := w.containers[pe.index]; c.running && c.pid == pe.pid && c.ready != pe.ready {
				c.ready = pe.ready
				w.dirty = true
			}
		case <-ticker.C:
			if !w.prepared && w.failure != nil && w.failure.retry && time.Now().After(w.nextPrepare) {
				w.tryPrepare(ctx)
			}
			w.restartDue()
			if w.prepared {
				w.refreshTokens(ctx, time.Now())
			}
		case grace := <-w.stopCh:
			w.shutdown(grace)
			w.releaseNetwork()
			w.deleteObject(ctx)
			return
		case <-ctx.Done():
			// The agent is exiting: stop quickly, leave the API objects alone.
			w.shutdown(shutdownGrace)
			w.releaseNetwork()
			return
		}
		if w.dirty {
			w.writeStatus(ctx)
		}
	}
}

// tryPrepare checks the spec, sets up the network and resolves every container; on
// success it starts the containers.
func (w *podWorker) tryPrepare(ctx context.Context) {
	w.dirty = true
	if err := w.prepare(ctx); err != nil {
		var pe *podError
		if !errors.As(err, &pe) {
			pe = &podError{reason: "NodeError", message: err.Error(), retry: true}
		}
		w.failure = pe
		w.nextPrepare = time.Now().Add(configRetry)
		return
	}
	w.failure, w.prepared = nil, true
	for i := range w.containers {
		w.startContainer(i)
	}
}

func (w *podWorker) prepare(ctx context.Context) error {
	spec := &w.pod.Spec
	if len(spec.InitContainers) > 0 {
		return &podError{reason: "Unsupported", message: "init containers are not supported by the devcluster node"}
	}
	binaries := make([]string, len(spec.Containers))
	images := make([]*imageSetup, len(spec.Containers))
	anyBinary := false
	for i := range spec.Containers {
		c := &spec.Containers[i]
		m, err := resolveImage(w.deps.images, c.Image)
		if err != nil {
			return &podError{reason: "ErrImageNotMapped", message: fmt.Sprintf("container %q: %v", c.Name, err)}
		}
		if m.Binary != "" && len(c.Command) > 0 {
			return &podError{reason: "Unsupported", message: fmt.Sprintf("container %q: command overrides the image entrypoint; only args are supported for images mapped to a binary", c.Name)}
		}
		if c.ReadinessProbe != nil {
			if err := checkProbe(c.ReadinessProbe); err != nil {
				return &podError{reason: "Unsupported", message: fmt.Sprintf("container %q readinessProbe: %v", c.Name, err)}
			}
		}
		if m.Layout == "" {
			binaries[i], anyBinary = m.Binary, true
			continue
		}
		// Image and user first: a refused user needs no network, volumes or tokens.
		if images[i], err = w.setupImage(c, m.Layout); err != nil {
			return err
		}
	}

	if w.cgroupDir == "" {
		dir, err := w.deps.cgroups.addPod(w.pod.UID)
		if err != nil {
			return err
		}
		w.cgroupDir = dir
	}
	if w.pn == nil && w.netnsName == "" && w.podIP == "" {
		if spec.HostNetwork {
			w.podIP = w.deps.hostIP
		} else {
			pn, err := w.deps.net.addPod(podNetID(w.pod.UID))
			if err != nil {
				return fmt.Errorf("pod network: %w", err)
			}
			w.pn, w.netnsName, w.podIP = &pn, pn.netns, pn.ip.String()
		}
	}

	volumes, err := buildVolumes(ctx, w.pod, w.podIP, w.deps.hostIP, w.deps.refs)
	if err != nil {
		var pe *podError
		if errors.As(err, &pe) {
			return pe
		}
		return &podError{reason: "CreateContainerConfigError", message: err.Error(), retry: true}
	}
	tokens, err := w.fetchTokens(ctx, volumes, time.Now())
	if err != nil {
		return &podError{reason: "CreateContainerConfigError", message: err.Error(), retry: true}
	}
	var hostVolumes map[string]string
	if anyBinary {
		if hostVolumes, err = writeHostVolumes(volumes, podDir(w.deps.stateDir, w.pod)); err != nil {
			return err
		}
	}

	containers := make([]*container, len(spec.Containers))
	for i := range spec.Containers {
		c := &spec.Containers[i]
		env, err := containerEnv(ctx, w.pod, c, w.podIP, w.deps.hostIP, w.deps.refs)
		if err != nil {
			return &podError{reason: "CreateContainerConfigError", message: err.Error(), retry: true}
		}
		// The container's own variables come later and win (exec keeps the
		// last of duplicate keys).
		env = append(apiServiceEnv(w.deps.apiService), env...)
		if images[i] != nil {
			if containers[i], err = w.imageContainer(c, images[i], env, volumes); err != nil {
				return err
			}
			continue
		}
		env = withEnvDefaults(env, w.pod.Name)
		mounts, err := containerMounts(c, hostVolumes)
		if err != nil {
			return err
		}
		for j, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[j] = k + "=" + rewritePaths(v, mounts)
			}
		}
		vars := envMap(env)
		args := make([]string, len(c.Args))
		for j, a := range c.Args {
			args[j] = rewritePaths(expandEnv(a, vars), mounts)
		}
		containers[i] = &container{
			spec:    *c.DeepCopy(),
			binary:  binaries[i],
			args:    args,
			env:     env,
			logPath: containerLogPath(w.deps.stateDir, w.pod, c.Name),
			workDir: filepath.Join(podDir(w.deps.stateDir, w.pod), c.Name),
		}
	}
	w.containers = containers
	w.volumes, w.hostVolumes, w.tokens = volumes, hostVolumes, tokens
	w.probeCancel = make([]context.CancelFunc, len(containers))
	return nil
}

func (w *podWorker) startContainer(i int) {
	c := w.containers[i]
	w.dirty = true
	sp := w.deps.spawner
	var err error
	if c.image != nil {
		sp = w.deps.imageSpawner
		err = w.buildContainerRoot(c)
	}
	if err == nil {
		err = c.start(sp, i, w.netnsName, w.cgroupDir, w.exits, w.done)
	}
	if err != nil {
		c.restarts++
		c.waitReason, c.waitMessage = "CrashLoopBackOff", err.Error()
		c.nextStart = time.Now().Add(restartDelay(c.restarts))
		return
	}
	w.deps.execs.set(w.pod.UID, c.spec.Name, c.execTarget(sp, w.netnsName, w.cgroupDir))
	if c.spec.ReadinessProbe == nil {
		c.ready = true
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.probeCancel[i] = cancel
	pid := c.pid
	p := &prober{probe: c.spec.ReadinessProbe, container: &c.spec, podIP: w.podIP, report: func(ready bool, _ error) {
		select {
		case w.probes <- probeEvent{index: i, pid: pid, ready: ready}:
		case <-ctx.Done():
		}
	}}
	go p.run(ctx)
}

func (w *podWorker) onExit(ev exitEvent) {
	c := w.containers[ev.index]
	if !c.running || c.pid != ev.pid {
		return
	}
	if cancel := w.probeCancel[ev.index]; cancel != nil {
		cancel()
		w.probeCancel[ev.index] = nil
	}
	c.exited(ev)
	w.deps.execs.remove(w.pod.UID, c.spec.Name)
	w.dirty = true
	if restartWanted(w.pod.Spec.RestartPolicy, c.terminated.ExitCode) {
		c.nextStart = time.Now().Add(restartDelay(c.restarts))
		c.waitReason = "CrashLoopBackOff"
		c.waitMessage = fmt.Sprintf("back-off restarting container %q (exit code %d)", c.spec.Name, c.terminated.ExitCode)
	}
}

func restartWanted(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

func (w *podWorker) restartDue() {
	now := time.Now()
	for i, c := range w.containers {
		if !c.running && c.waitReason == "CrashLoopBackOff" && now.After(c.nextStart) {
			c.restarts++
			w.startContainer(i)
		}
	}
}

// shutdown stops every container: SIGTERM, up to grace for them to exit, then SIGKILL.
func (w *podWorker) shutdown(grace time.Duration) {
	for i, cancel := range w.probeCancel {
		if cancel != nil {
			cancel()
			w.probeCancel[i] = nil
		}
	}
	for _, c := range w.containers {
		w.deps.execs.remove(w.pod.UID, c.spec.Name)
	}
	grace = min(max(grace, 0), maxGrace)
	w.signalAll(syscall.SIGTERM)
	if w.waitAllExited(grace) {
		return
	}
	w.signalAll(syscall.SIGKILL)
	w.waitAllExited(killWait)
}

func (w *podWorker) signalAll(sig syscall.Signal) {
	for _, c := range w.containers {
		s := sig
		if sig == syscall.SIGTERM && c.stopSignal != 0 {
			s = c.stopSignal
		}
		// A process that cannot be signalled is waited for and then SIGKILLed; a group
		// that cannot be killed at all is a kernel problem this loop cannot fix.
		_ = c.signal(s)
	}
}

func (w *podWorker) waitAllExited(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for w.anyRunning() {
		select {
		case ev := <-w.exits:
			if c := w.containers[ev.index]; c.running && c.pid == ev.pid {
				c.exited(ev)
			}
		case <-deadline.C:
			return false
		}
	}
	return true
}

func (w *podWorker) anyRunning() bool {
	for _, c := range w.containers {
		if c.running {
			return true
		}
	}
	return false
}

// releaseNetwork removes the pod's cgroup (killing what an exec may have left running),
// network namespace and veth pair, and its folder.
func (w *podWorker) releaseNetwork() {
	if w.cgroupDir != "" {
		// As below: Agent.Run's final sweep removes what is left.
		_ = w.deps.cgroups.removePod(w.cgroupDir)
		w.cgroupDir = ""
	}
	if w.pn != nil {
		// Errors here are left for Agent.Run's final sweep, which removes every
		// namespace and link named after the bridge.
		_ = w.deps.net.removePod(*w.pn)
		w.pn = nil
	}
	os.RemoveAll(podDir(w.deps.stateDir, w.pod))
}

// deleteObject finishes a graceful deletion the way the kubelet does: once the containers
// are gone, delete the pod with grace period 0, only if it is still the same pod.
func (w *podWorker) deleteObject(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	zero := int64(0)
	uid := w.pod.UID
	err := w.deps.client.CoreV1().Pods(w.pod.Namespace).Delete(ctx, w.pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		// The agent's resync will find the pod again and retry.
		return
	}
}

func (w *podWorker) snapshot() podSnapshot {
	s := podSnapshot{
		PodIP:         w.podIP,
		HostIP:        w.deps.hostIP,
		StartTime:     w.startTime.Truncate(time.Second),
		RestartPolicy: w.pod.Spec.RestartPolicy,
	}
	if w.failure != nil {
		s.FailReason, s.FailMessage = w.failure.reason, w.failure.message
		for _, c := range w.pod.Spec.Containers {
			s.Containers = append(s.Containers, containerSnapshot{Name: c.Name, Image: c.Image, WaitingReason: w.failure.reason, WaitingMessage: w.failure.message})
		}
		return s
	}
	for _, c := range w.containers {
		cs := c.snapshot()
		cs.StartedAt = cs.StartedAt.Truncate(time.Second)
		s.Containers = append(s.Containers, cs)
	}
	return s
}

// writeStatus reports the pod's status if it differs from what the API server holds. A
// failed write leaves the worker dirty, so the next tick retries (the API server may be
// restarting).
func (w *podWorker) writeStatus(ctx context.Context) {
	cur, ok := w.deps.getPod(w.pod.Namespace, w.pod.Name)
	if !ok || cur.UID != w.pod.UID {
		w.dirty = false
		return
	}
	st := podStatus(cur.Status, w.snapshot(), metav1.NewTime(time.Now().Truncate(time.Second)))
	if apiequality.Semantic.DeepEqual(st, cur.Status) {
		w.dirty = false
		return
	}
	upd := cur.DeepCopy()
	upd.Status = st
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	if _, err := w.deps.client.CoreV1().Pods(upd.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		w.dirty = true
		return
	}
	w.dirty = false
}

// podNetID is a short, stable id for a pod's namespace and links.
func podNetID(uid types.UID) string {
	h := fnv.New32a()
	h.Write([]byte(uid))
	return fmt.Sprintf("%08x", h.Sum32())
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
