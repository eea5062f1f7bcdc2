package gossipstream

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs a short scenario (about 1 s) on 5 real nodes over
// loopback gRPC in both profiles, over streams. Plumtree sends each
// message about once per node: far fewer copies than the unary
// transport's flood (default) or fanout 4 (equalised).
func TestSmoke(t *testing.T) {
	gossipgrpc.Smoke(t, New, func(t *testing.T, p harness.Profile, res *harness.RunResult) {
		if !strings.Contains(strings.Join(res.Describe, "\n"), "transport: Gossip.Stream") {
			t.Errorf("describe does not name the streaming transport: %q", res.Describe)
		}
		// Pruning needs duplicates to happen first, so allow for the
		// tree's construction on a short run: a flood of the 5-node full
		// mesh would be 3 copies per delivery.
		if c := res.Latency.CopiesPerDelivery; c > 2.5 {
			t.Errorf("%s: %g copies per delivery in the latency phase", p, c)
		}
	})
}

func TestStartErrors(t *testing.T) { gossipgrpc.StartErrors(t, New) }
