package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// startNode starts a real node on 127.0.0.1:0 and a client connection to it.
func startNode(t *testing.T, id string, opts ...Option) (*GossipNode, *grpc.ClientConn) {
	t.Helper()
	n, err := New(id, "", nil, nil, nil, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(n.ListenAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		n.Close()
	})
	return n, cc
}

func TestPublish(t *testing.T) {
	n := NewGossipNode("p", "", nil, nil, nil, nil)
	defer n.Close()
	sub, err := n.Subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, ack, err := n.Publish(ctx, "", []byte("text"))
	if err != nil || len(id) != 32 || ack.GetHash() != id || ack.GetFrom() != "p" {
		t.Fatalf("id %q ack %v err %v", id, ack, err)
	}
	bin := []byte{0xff, 0x00, 0xfe}
	if _, _, err := n.Publish(ctx, "bin", bin); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Publish(ctx, "bin", bin); !errors.Is(err, ErrAlreadySeen) || status.Code(err) != codes.AlreadyExists {
		t.Errorf("republish: %v", err)
	}
	for _, want := range []struct{ id, payload string }{{id, "text"}, {"bin", string(bin)}} {
		d := <-sub.C()
		if d.Hash != want.id || d.Payload != want.payload || d.Origin != "p" || d.CreatedAt.IsZero() {
			t.Errorf("delivery %+v, want %s %q", d, want.id, want.payload)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	n := NewGossipNode("s", "", nil, nil, nil, nil)
	fast, _ := n.Subscribe(0)
	slow, _ := n.Subscribe(2)
	if _, err := n.Subscribe(MaxSubscriptionBuffer + 1); status.Code(err) != codes.InvalidArgument {
		t.Errorf("oversized buffer: %v", err)
	}
	ctx := context.Background()
	for i := range 5 {
		if _, _, err := n.Publish(ctx, fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if d := <-fast.C(); d.Hash != fmt.Sprint(i) || d.Missed != 0 {
			t.Fatalf("fast got %+v, want %d", d, i)
		}
	}
	// The slow one has the first two, missed three, and says so on the
	// next message it gets.
	for i := range 2 {
		if d := <-slow.C(); d.Hash != fmt.Sprint(i) {
			t.Fatalf("slow got %+v", d)
		}
	}
	if _, _, err := n.Publish(ctx, "after", nil); err != nil {
		t.Fatal(err)
	}
	if d := <-slow.C(); d.Hash != "after" || d.Missed != 3 || slow.Missed() != 3 {
		t.Errorf("after the gap: %+v (total missed %d)", d, slow.Missed())
	}
	if st := n.Stats(); st.Subscribers != 2 || st.SubscriberMissed != 3 {
		t.Errorf("Subscribers %d SubscriberMissed %d", st.Subscribers, st.SubscriberMissed)
	}
	slow.Close()
	slow.Close() // idempotent
	if _, ok := <-slow.C(); ok {
		t.Error("closed subscription still open")
	}
	n.Close()
	for range fast.C() { // drains "after", then closes
	}
	if _, err := n.Subscribe(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

// TestNodeServiceOverGRPC drives the client API as gossipctl does.
func TestNodeServiceOverGRPC(t *testing.T) {
	a, ccA := startNode(t, "a")
	b, ccB := startNode(t, "b")
	if _, err := b.Join(context.Background(), []string{a.ListenAddr()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	apiA, apiB := pbgrpc.NewNodeServiceClient(ccA), pbgrpc.NewNodeServiceClient(ccB)

	stream, err := apiB.Subscribe(ctx, &pb.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "subscription registered", func() error {
		if b.Stats().Subscribers != 1 {
			return errors.New("no subscriber yet")
		}
		return nil
	})
	pub, err := apiA.Publish(ctx, &pb.PublishRequest{Payload: []byte("over grpc"), Id: "m1"})
	if err != nil || pub.GetId() != "m1" || pub.GetAck().GetFrom() != "a" {
		t.Fatalf("publish: %v %v", pub, err)
	}
	got, err := stream.Recv()
	if err != nil || got.GetId() != "m1" || string(got.GetPayload()) != "over grpc" || got.GetOrigin() != "a" || got.GetHops() != 1 {
		t.Fatalf("subscribe: %v %v", got, err)
	}
	if _, err := apiA.Publish(ctx, &pb.PublishRequest{Id: "m1"}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("duplicate publish: %v", err)
	}
	if _, err := apiA.Publish(ctx, &pb.PublishRequest{Payload: make([]byte, 2<<20)}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized publish: %v", err)
	}

	members, err := apiA.Members(ctx, &pb.MembersRequest{})
	if err != nil || len(members.GetMembers()) != 2 || !members.GetMembers()[0].GetSelf() || members.GetMembers()[1].GetId() != "b" ||
		members.GetMembers()[1].GetState() != pb.MemberState_MEMBER_STATE_ALIVE {
		t.Errorf("members: %v %v", members, err)
	}
	// A stream's ACK rides with the next envelope back, or goes within
	// half a GraftTimeout.
	testutil.WaitFor(t, 5*time.Second, "b's ACK in a's neighbour table", func() error {
		nbs, err := apiA.Neighbors(ctx, &pb.NeighborsRequest{})
		if err != nil || len(nbs.GetNeighbors()) != 1 || nbs.GetNeighbors()[0].GetAcked() != 1 {
			return fmt.Errorf("neighbors: %v %v", nbs, err)
		}
		return nil
	})
	st, err := apiA.Status(ctx, &pb.StatusRequest{})
	delivered, _ := st.CounterValue("core.delivered")
	ttl, _ := st.CounterValue("core.ttl_seconds")
	if err != nil || st.GetId() != "a" || delivered != 1 || st.GetListenAddress() != a.ListenAddr() || ttl < 2 {
		t.Errorf("status: %v %v", st, err)
	}

	// Closing the node ends the stream with Unavailable.
	b.Close()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable && err != io.EOF {
		t.Errorf("stream after node close: %v", err)
	}
}

// TestSubscriberDisconnects: a client that goes away mid-stream ends its
// subscription; the node keeps serving.
func TestSubscriberDisconnects(t *testing.T) {
	n, cc := startNode(t, "d")
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := pbgrpc.NewNodeServiceClient(cc).Subscribe(ctx, &pb.SubscribeRequest{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "subscription registered", func() error {
		if n.Stats().Subscribers != 1 {
			return errors.New("no subscriber yet")
		}
		return nil
	})
	cancel()
	stream.Recv()
	testutil.WaitFor(t, 5*time.Second, "subscription removed", func() error {
		if s := n.Stats().Subscribers; s != 0 {
			return fmt.Errorf("%d subscribers", s)
		}
		return nil
	})
	if _, _, err := n.Publish(context.Background(), "", []byte("still serving")); err != nil {
		t.Fatal(err)
	}
}
