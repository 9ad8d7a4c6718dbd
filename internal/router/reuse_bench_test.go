package router_test

import (
	"testing"

	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
)

// BenchmarkRecompileOneChange recompiles a listener of 1,000 realistic
// HTTPRoutes after one route changed: from scratch, and reusing the
// previous Table's unchanged routes (what the proxy does on a reload).
func BenchmarkRecompileOneChange(b *testing.B) {
	l := scaleListener(b, 1000)
	changed := *l
	changed.VirtualHosts = append(changed.VirtualHosts[:0:0], l.VirtualHosts...)
	vh := &changed.VirtualHosts[0]
	vh.Routes = append(vh.Routes[:0:0], vh.Routes...)
	vh.Routes[len(vh.Routes)/2].Timeouts.Request++
	reg := lb.NewRegistry()
	for _, reuse := range []bool{false, true} {
		name := "scratch"
		if reuse {
			name = "reusing"
		}
		b.Run(name, func(b *testing.B) {
			prev, err := router.CompileReusing(l, reg, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				src := l
				if i%2 == 0 {
					src = &changed
				}
				i++
				var from *router.Table
				if reuse {
					from = prev
				}
				next, err := router.CompileReusing(src, reg, from)
				if err != nil {
					b.Fatal(err)
				}
				prev = next
			}
		})
	}
}
