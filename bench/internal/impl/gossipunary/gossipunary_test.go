package gossipunary

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs a short scenario (about 1 s) on 5 real nodes over
// loopback gRPC in both profiles, over the unary transport.
func TestSmoke(t *testing.T) {
	gossipgrpc.Smoke(t, New, func(t *testing.T, p harness.Profile, res *harness.RunResult) {
		if !strings.Contains(strings.Join(res.Describe, "\n"), "PutMessageToClient (Config.DisableStreaming)") {
			t.Errorf("describe does not name the unary transport: %q", res.Describe)
		}
	})
}

func TestStartErrors(t *testing.T) { gossipgrpc.StartErrors(t, New) }
