package node

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodPhase(t *testing.T) {
	running := containerSnapshot{Name: "a", Running: true}
	ok := containerSnapshot{Name: "a", Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	bad := containerSnapshot{Name: "b", Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}
	backoff := containerSnapshot{Name: "b", WaitingReason: "CrashLoopBackOff", Restarts: 1}
	tests := []struct {
		name string
		s    podSnapshot
		want corev1.PodPhase
	}{
		{"not started", podSnapshot{Containers: []containerSnapshot{{Name: "a"}}}, corev1.PodPending},
		{"running", podSnapshot{Containers: []containerSnapshot{running}}, corev1.PodRunning},
		{"unknown image, always", podSnapshot{RestartPolicy: corev1.RestartPolicyAlways, FailReason: "ErrImageNotMapped"}, corev1.PodPending},
		{"unknown image, never", podSnapshot{RestartPolicy: corev1.RestartPolicyNever, FailReason: "ErrImageNotMapped"}, corev1.PodFailed},
		{"never, all ok", podSnapshot{RestartPolicy: corev1.RestartPolicyNever, Containers: []containerSnapshot{ok}}, corev1.PodSucceeded},
		{"never, one failed", podSnapshot{RestartPolicy: corev1.RestartPolicyNever, Containers: []containerSnapshot{ok, bad}}, corev1.PodFailed},
		{"never, one still running", podSnapshot{RestartPolicy: corev1.RestartPolicyNever, Containers: []containerSnapshot{running, bad}}, corev1.PodRunning},
		{"onfailure, ok", podSnapshot{RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []containerSnapshot{ok}}, corev1.PodSucceeded},
		{"always, crash looping", podSnapshot{RestartPolicy: corev1.RestartPolicyAlways, Containers: []containerSnapshot{backoff}}, corev1.PodRunning},
	}
	for _, tt := range tests {
		if got := podPhase(tt.s); got != tt.want {
			t.Errorf("%s: phase %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestPodStatusReadinessAndConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	prev := corev1.PodStatus{QOSClass: corev1.PodQOSBurstable}
	s := podSnapshot{
		PodIP: "10.244.0.2", HostIP: "127.0.0.1", RestartPolicy: corev1.RestartPolicyAlways,
		Containers: []containerSnapshot{{Name: "a", Running: true, Ready: true}, {Name: "b", Running: true, Ready: false}},
	}
	st := podStatus(prev, s, t0)
	if st.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("QOS class lost: %q", st.QOSClass)
	}
	if st.PodIP != "10.244.0.2" || len(st.PodIPs) != 1 || st.HostIP != "127.0.0.1" {
		t.Errorf("addresses: podIP %q podIPs %v hostIP %q", st.PodIP, st.PodIPs, st.HostIP)
	}
	if c := cond(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
		t.Fatalf("Ready = %+v, want False with one container not ready", c)
	}
	// Both ready now: Ready flips and its transition time moves; PodScheduled keeps its time.
	s.Containers[1].Ready = true
	st2 := podStatus(st, s, t1)
	if c := cond(st2, corev1.PodReady); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(&t1) {
		t.Errorf("Ready = %+v, want True at %v", c, t1)
	}
	if c := cond(st2, corev1.PodScheduled); !c.LastTransitionTime.Equal(&t0) {
		t.Errorf("PodScheduled moved to %v, want unchanged %v", c.LastTransitionTime, t0)
	}
	if len(st2.ContainerStatuses) != 2 || !st2.ContainerStatuses[1].Ready || st2.ContainerStatuses[1].State.Running == nil {
		t.Errorf("container statuses: %+v", st2.ContainerStatuses)
	}
}

func TestPodStatusFailureReason(t *testing.T) {
	s := podSnapshot{RestartPolicy: corev1.RestartPolicyNever, FailReason: "ErrImageNotMapped", FailMessage: `image "x" has no local binary`,
		Containers: []containerSnapshot{{Name: "a", WaitingReason: "ErrImageNotMapped", WaitingMessage: "m"}}}
	st := podStatus(corev1.PodStatus{}, s, metav1.Now())
	if st.Phase != corev1.PodFailed || st.Reason != "ErrImageNotMapped" || st.Message == "" {
		t.Errorf("phase %s reason %q message %q", st.Phase, st.Reason, st.Message)
	}
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ErrImageNotMapped" {
		t.Errorf("container state %+v", st.ContainerStatuses[0].State)
	}
}

func cond(st corev1.PodStatus, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}
