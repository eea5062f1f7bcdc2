package gossip

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// TestStreamLimit: a peer (here: one connection) with its maximum of
// streams open gets ResourceExhausted for the next one; once one ends it
// may open another.
func TestStreamLimit(t *testing.T) {
	n, err := New("s", "", nil, nil, nil, nil, WithStreamLimit(NewStreamLimit(2)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(n.ListenAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	g := pbgrpc.NewGossipClient(cc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// hello opens a stream and waits for the node's hello: the stream is up.
	hello := func(ctx context.Context, id string) error {
		s, err := g.Stream(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&pb.Envelope{Hello: &pb.Hello{Id: id, Address: "127.0.0.1:1"}}); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	first, cancelFirst := context.WithCancel(ctx)
	if err := hello(first, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := hello(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	err = hello(ctx, "p3")
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "already has 2 Gossip.Stream calls open on this node") {
		t.Fatalf("third stream: %v; want ResourceExhausted", err)
	}
	cancelFirst()
	// The node notices the cancelled stream asynchronously.
	testutil.WaitFor(t, 10*time.Second, "a stream after one ended", func() error { return hello(ctx, "p4") })
	if got := n.Stats().Security.StreamsRefused; got < 1 {
		t.Errorf("streams_refused = %d", got)
	}
}
