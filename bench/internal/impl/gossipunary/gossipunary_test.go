package gossipunary

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs a short scenario (about 1 s) on 5 real nodes over
// loopback gRPC in both profiles, over the unary transport.
func TestSmoke(t *testing.T) {
	gossipgrpc.Smoke(t, New, "PutMessageToClient (Config.DisableStreaming)", nil)
}

func TestStartErrors(t *testing.T) { gossipgrpc.StartErrors(t, New) }
