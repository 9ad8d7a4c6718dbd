package translate

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/provider/file"
)

// With a data plane per Gateway, a ListenerSet listener on a port the
// Gateway's own listeners do not use is served like any other: the
// provisioner exposes the ports of the translation (provision.Input
// ServedPorts), so the listener is accepted and its port is in the IR.
func TestListenerSetProvisionedPorts(t *testing.T) {
	res, _, err := file.Load("testdata/listenerset-routing.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := Translate(res, Options{Provisioned: true, DefaultAddress: "0.0.0.0"})
	if len(r.Status.ListenerSets) != 1 {
		t.Fatalf("ListenerSets = %+v, want one", r.Status.ListenerSets)
	}
	byName := map[gwv1.SectionName]gwv1.ListenerEntryStatus{}
	for _, l := range r.Status.ListenerSets[0].Status.Listeners {
		byName[l.Name] = l
	}
	for _, name := range []gwv1.SectionName{"alt", "http"} {
		if c := findCond(byName[name].Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("listener %s: Accepted = %+v, want True", name, c)
		}
	}
	served := false
	for _, l := range r.IR.Listeners {
		served = served || l.Port == 8080
	}
	if !served {
		t.Errorf("port 8080 of the ListenerSet listener alt is not in the IR: %+v", r.IR.Listeners)
	}
}

// A Gateway that neither allows ListenerSets nor is named by one reports no
// attachedListenerSets (its status is what it was before ListenerSets); one
// that allows them reports how many are accepted, 0 included.
func TestAttachedListenerSetsReported(t *testing.T) {
	for _, tc := range []struct {
		file string
		want map[string]*int32
	}{
		{"testdata/gateway-basic-http.in.yaml", map[string]*int32{"gw": nil}},
		{"testdata/listenerset-allowed-namespaces.in.yaml", map[string]*int32{"default-none": ptrTo[int32](0), "same": ptrTo[int32](1), "selector": ptrTo[int32](1)}},
	} {
		res, _, err := file.Load(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		r := Translate(res, Options{DefaultAddress: "127.0.0.1"})
		for _, g := range r.Status.Gateways {
			want, ok := tc.want[g.Name]
			if !ok {
				continue
			}
			got := g.Status.AttachedListenerSets
			if (got == nil) != (want == nil) || got != nil && *got != *want {
				t.Errorf("%s: gateway %s attachedListenerSets = %v, want %v", tc.file, g.Name, countOrNil(got), countOrNil(want))
			}
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

func countOrNil(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}
