package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// imageSetup is what the pod worker resolved for a container that runs an OCI image,
// before the pod has a network or volumes.
type imageSetup struct {
	img   *unpackedImage
	ident identity
	caps  []uintptr
}

// setupImage unpacks (or finds) the container's image and resolves its user. runAsNonRoot
// with a root user refuses the container as the kubelet does: CreateContainerConfigError.
func (w *podWorker) setupImage(c *corev1.Container, layoutDir string) (*imageSetup, error) {
	img, err := w.deps.store.get(layoutDir)
	if err != nil {
		return nil, &podError{reason: "ErrImagePull", message: fmt.Sprintf("container %q: %v", c.Name, err), retry: true}
	}
	sec := securityFor(w.pod, c)
	if err := verifyNonRoot(sec, img.config.User); err != nil {
		return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q: %v (pod %s/%s)", c.Name, err, w.pod.Namespace, w.pod.Name)}
	}
	passwd, err := readImageFile(img.rootfs, "/etc/passwd")
	if err != nil {
		return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q: %v", c.Name, err)}
	}
	group, err := readImageFile(img.rootfs, "/etc/group")
	if err != nil {
		return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q: %v", c.Name, err)}
	}
	ident, err := resolveUser(sec, img.config.User, passwd, group)
	if err != nil {
		return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q: %v", c.Name, err)}
	}
	caps, err := ambientCaps(c.SecurityContext)
	if err != nil {
		return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q: %v", c.Name, err)}
	}
	return &imageSetup{img: img, ident: ident, caps: caps}, nil
}

// readImageFile reads a file of an unpacked image; a missing file reads as empty.
func readImageFile(rootfs, name string) ([]byte, error) {
	r, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rel, err := resolveIn(r, name)
	if err != nil {
		return nil, fmt.Errorf("image file %s: %w", name, err)
	}
	b, err := r.ReadFile(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image file %s: %w", name, err)
	}
	return b, nil
}

// imageContainer builds an image container: argv from the image's Entrypoint and Cmd and
// the container's command and args, env = image Env then the container's env, the
// working folder from the container or the image (default "/"), the executable looked up
// in the image with the final PATH.
func (w *podWorker) imageContainer(c *corev1.Container, s *imageSetup, env []string, volumes map[string]*volumeData) (*container, error) {
	cfg := s.img.config
	argv, err := containerArgv(cfg.Entrypoint, cfg.Cmd, c.Command, c.Args, envMap(env))
	if err != nil {
		return nil, &podError{reason: "CreateContainerError", message: fmt.Sprintf("container %q: %v", c.Name, err)}
	}
	full := withEnvDefaults(mergeEnv(cfg.Env, env), w.pod.Name)
	workDir := c.WorkingDir
	if workDir == "" {
		workDir = cfg.WorkingDir
	}
	if workDir == "" {
		workDir = "/"
	}
	if !path.IsAbs(workDir) {
		return nil, &podError{reason: "CreateContainerError", message: fmt.Sprintf("container %q: working folder %q is not absolute", c.Name, workDir)}
	}
	r, err := os.OpenRoot(s.img.rootfs)
	if err != nil {
		return nil, err
	}
	exe, err := lookPathIn(r, argv[0], workDir, envMap(full)["PATH"])
	r.Close()
	if err != nil {
		return nil, &podError{reason: "CreateContainerError", message: fmt.Sprintf("container %q: %v", c.Name, err)}
	}
	stop, err := parseStopSignal(cfg.StopSignal)
	if err != nil {
		return nil, &podError{reason: "CreateContainerError", message: fmt.Sprintf("container %q: %v", c.Name, err)}
	}
	var mounts []imageMount
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" || m.SubPathExpr != "" {
			return nil, &podError{reason: "Unsupported", message: fmt.Sprintf("container %q volumeMount %q: subPath is not supported by the devcluster node", c.Name, m.Name)}
		}
		if _, ok := volumes[m.Name]; !ok {
			return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q volumeMount %q: no volume of that name", c.Name, m.Name)}
		}
		if !path.IsAbs(m.MountPath) {
			return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q volumeMount %q: mountPath %q is not absolute", c.Name, m.Name, m.MountPath)}
		}
		mounts = append(mounts, imageMount{volume: m.Name, mountPath: path.Clean(m.MountPath)})
	}
	return &container{
		spec:    *c.DeepCopy(),
		binary:  exe,
		argv:    argv,
		env:     full,
		logPath: containerLogPath(w.deps.stateDir, w.pod, c.Name),
		workDir: workDir,
		image:   s.img,
		root:    filepath.Join(podDir(w.deps.stateDir, w.pod), c.Name, "rootfs"),
		mounts:  mounts,
		ident:   s.ident,
		caps:    s.caps,

		stopSignal: stop,
	}, nil
}

// buildContainerRoot gives the container a fresh root before each start.
func (w *podWorker) buildContainerRoot(c *container) error {
	hostname := w.pod.Name
	if w.pod.Spec.Hostname != "" {
		hostname = w.pod.Spec.Hostname
	}
	if err := buildRoot(c.image, c.root, mayWriteAnyFile(c.ident, c.caps), c.mounts, w.volumes, w.fsGroup(), hostsFile(w.podIP, hostname), hostname, resolvConf(w.pod, w.deps.clusterDNS, w.deps.clusterDomain), c.workDir); err != nil {
		return fmt.Errorf("container %q: root: %w", c.spec.Name, err)
	}
	return nil
}

// mayWriteAnyFile reports whether a process could change a root-owned read-only file: as
// uid 0, or with a capability that overrides or changes file permissions.
func mayWriteAnyFile(id identity, caps []uintptr) bool {
	if id.uid == 0 {
		return true
	}
	for _, c := range caps {
		switch c {
		case unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_CHOWN, unix.CAP_SYS_ADMIN:
			return true
		}
	}
	return false
}

// fsGroup is the group volume files get, or -1.
func (w *podWorker) fsGroup() int {
	if sc := w.pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		return int(*sc.FSGroup)
	}
	return -1
}
