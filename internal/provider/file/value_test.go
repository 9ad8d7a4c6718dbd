package file

import (
	"fmt"
	"strings"
	"testing"
)

// TestDuplicateKeys: a key given twice is reported with both lines, in a
// small mapping (found by a scan) and in one above smallMapping (a map).
func TestDuplicateKeys(t *testing.T) {
	for _, n := range []int{3, smallMapping + 8} {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n  labels:\n")
		for i := range n {
			fmt.Fprintf(&b, "    k%d: v\n", i)
		}
		b.WriteString("    k1: again\n") // line 5 + n + 1; k1 is on line 7
		_, _, err := parse([]source{{name: "ns.yaml", data: []byte(b.String())}}, nil)
		want := fmt.Sprintf(`ns.yaml:%d: Namespace ns: metadata.labels.k1: duplicate key "k1" (first at line 7)`, 6+n)
		if err == nil || err.Error() != want {
			t.Errorf("%d labels: got %v, want %s", n, err, want)
		}
	}
}
