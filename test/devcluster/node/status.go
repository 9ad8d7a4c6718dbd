package node

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerSnapshot is what the pod worker knows about one container at one moment.
type containerSnapshot struct {
	Name, Image, ContainerID string
	// ImageID is repository@digest for an image container, else empty (Image is reported).
	ImageID   string
	Running   bool
	StartedAt time.Time
	// Terminated is the current state when the container ended and is not running.
	Terminated *corev1.ContainerStateTerminated
	// LastTerminated is the previous run, after a restart.
	LastTerminated                *corev1.ContainerStateTerminated
	WaitingReason, WaitingMessage string
	Ready                         bool
	Restarts                      int32
}

// podSnapshot is the pod worker's view of its pod, the input of podStatus.
type podSnapshot struct {
	PodIP, HostIP string
	StartTime     time.Time
	RestartPolicy corev1.RestartPolicy
	Containers    []containerSnapshot
	// FailReason is set when the pod cannot run at all (unknown image, unsupported field).
	FailReason, FailMessage string
}

// podStatus computes the status the agent reports. Fields the agent does not own (QOS
// class, conditions of others) are kept from prev; condition transition times move only
// when a condition's status changes.
func podStatus(prev corev1.PodStatus, s podSnapshot, now metav1.Time) corev1.PodStatus {
	st := *prev.DeepCopy()
	st.HostIP = s.HostIP
	st.HostIPs = []corev1.HostIP{{IP: s.HostIP}}
	if s.PodIP != "" {
		st.PodIP = s.PodIP
		st.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}
	if !s.StartTime.IsZero() {
		t := metav1.NewTime(s.StartTime)
		st.StartTime = &t
	}
	st.ContainerStatuses = make([]corev1.ContainerStatus, 0, len(s.Containers))
	allReady := len(s.Containers) > 0
	for _, c := range s.Containers {
		if c.ImageID == "" {
			c.ImageID = c.Image
		}
		cs := corev1.ContainerStatus{
			Name:         c.Name,
			Image:        c.Image,
			ImageID:      c.ImageID,
			ContainerID:  c.ContainerID,
			Ready:        c.Running && c.Ready,
			RestartCount: c.Restarts,
		}
		started := c.Running
		cs.Started = &started
		switch {
		case c.Running:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.StartedAt)}
		case c.Terminated != nil:
			cs.State.Terminated = c.Terminated.DeepCopy()
		default:
			reason := c.WaitingReason
			if reason == "" {
				reason = "ContainerCreating"
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: c.WaitingMessage}
		}
		if c.LastTerminated != nil {
			cs.LastTerminationState.Terminated = c.LastTerminated.DeepCopy()
		}
		if !cs.Ready {
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}

	st.Phase = podPhase(s)
	st.Reason, st.Message = "", ""
	if s.FailReason != "" {
		st.Reason, st.Message = s.FailReason, s.FailMessage
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	ready := allReady && !terminal
	st.Conditions = setCondition(st.Conditions, corev1.PodReadyToStartContainers, s.PodIP != "", now)
	st.Conditions = setCondition(st.Conditions, corev1.PodInitialized, true, now)
	st.Conditions = setCondition(st.Conditions, corev1.ContainersReady, ready, now)
	st.Conditions = setCondition(st.Conditions, corev1.PodReady, ready, now)
	st.Conditions = setCondition(st.Conditions, corev1.PodScheduled, true, now)
	return st
}

// podPhase follows the kubelet: a pod that cannot start stays Pending when it would be
// restarted forever (restartPolicy Always, e.g. a Deployment: failing it would make the
// ReplicaSet create replacements in a loop) and fails otherwise.
func podPhase(s podSnapshot) corev1.PodPhase {
	if s.FailReason != "" {
		if s.RestartPolicy == corev1.RestartPolicyAlways || s.RestartPolicy == "" {
			return corev1.PodPending
		}
		return corev1.PodFailed
	}
	var running, succeeded, failed, waiting int
	for _, c := range s.Containers {
		switch {
		case c.Running:
			running++
		case c.Terminated != nil && c.Terminated.ExitCode == 0:
			succeeded++
		case c.Terminated != nil:
			failed++
		default:
			waiting++
		}
	}
	started := running > 0 || succeeded > 0 || failed > 0 || anyRestarted(s.Containers)
	switch {
	case !started:
		return corev1.PodPending
	case running > 0 || waiting > 0:
		return corev1.PodRunning
	}
	// Every container has ended; the restart policy says whether that is final.
	switch s.RestartPolicy {
	case corev1.RestartPolicyNever:
		if failed > 0 {
			return corev1.PodFailed
		}
		return corev1.PodSucceeded
	case corev1.RestartPolicyOnFailure:
		if failed > 0 {
			return corev1.PodRunning
		}
		return corev1.PodSucceeded
	default:
		return corev1.PodRunning
	}
}

func anyRestarted(cs []containerSnapshot) bool {
	for _, c := range cs {
		if c.Restarts > 0 {
			return true
		}
	}
	return false
}

func setCondition(conds []corev1.PodCondition, typ corev1.PodConditionType, ok bool, now metav1.Time) []corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range conds {
		if conds[i].Type == typ {
			if conds[i].Status != status {
				conds[i].Status = status
				conds[i].LastTransitionTime = now
			}
			return conds
		}
	}
	return append(conds, corev1.PodCondition{Type: typ, Status: status, LastTransitionTime: now})
}
