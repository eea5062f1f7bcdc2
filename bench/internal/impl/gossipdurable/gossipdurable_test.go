package gossipdurable

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs a short scenario on 5 real nodes with their state on
// disk: every message is still delivered, about once per node.
func TestSmoke(t *testing.T) {
	gossipgrpc.Smoke(t, New, "persistence: every node keeps", func(t *testing.T, p harness.Profile, res *harness.RunResult) {
		if c := res.Latency.CopiesPerDelivery; c > 2.5 {
			t.Errorf("%s: %g copies per delivery in the latency phase", p, c)
		}
	})
}
