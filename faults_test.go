package gossip

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/memnet"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// The faults of issue 10, each on the default path over memnet. The
// 200-node scenarios are in scenario_default_test.go.

// TestRefuseUntilReady is fault 4: a node that has not joined refuses
// new messages with Unavailable (ErrNotReady) instead of acknowledging
// what it cannot pass on; copies relayed by other nodes are still taken,
// and once it is ready it publishes.
func TestRefuseUntilReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(1)
		n, err := New("lonely", "mem-lonely", nil, nil, nil, nil, WithTransport(net.Transport("mem-lonely")),
			WithConfig(Config{RefuseUntilReady: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		net.Register("mem-lonely", n)
		ctx := context.Background()
		if _, _, err := n.Publish(ctx, "early", []byte("x")); !errors.Is(err, ErrNotReady) || status.Code(err) != codes.Unavailable {
			t.Fatalf("Publish before joining = %v, want ErrNotReady (Unavailable)", err)
		}
		if n.seen("early") {
			t.Fatal("a refused message is recorded")
		}
		if _, err := n.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "relayed", FromHash: "peer", Origin: "peer", Hops: 1}); err != nil {
			t.Fatalf("a relayed copy was refused: %v", err)
		}
		n.MarkReady()
		if _, _, err := n.Publish(ctx, "later", []byte("x")); err != nil {
			t.Fatalf("Publish once ready = %v", err)
		}
	})
}
