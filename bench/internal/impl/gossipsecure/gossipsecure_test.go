package gossipsecure

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs the short scenario with mTLS and signed messages: every
// message is delivered everywhere.
func TestSmoke(t *testing.T) {
	gossipgrpc.Smoke(t, New, "transport: Gossip.Stream", func(*testing.T, harness.Profile, *harness.RunResult) {})
}
