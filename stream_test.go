package gossip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpc-gossip/gossip/internal/testutil"
	"github.com/grpc-gossip/gossip/internal/topology"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// publishAll publishes count messages from each node, ids prefix/node/k.
func publishAll(t *testing.T, nodes []*GossipNode, prefix string, count int) []string {
	t.Helper()
	var ids []string
	for _, nd := range nodes {
		for k := range count {
			id := fmt.Sprintf("%s/%s/%d", prefix, nd.Hash, k)
			if _, _, err := nd.Publish(t.Context(), id, []byte("payload "+id)); err != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// waitDelivered waits until every recorder has delivered every id exactly
// once (and nothing twice).
func waitDelivered(t *testing.T, timeout time.Duration, recs []*recorder, ids []string) {
	t.Helper()
	testutil.WaitFor(t, timeout, "every node delivering every message", func() error {
		for i, r := range recs {
			_, per := r.snapshot()
			for _, id := range ids {
				if per[id] != 1 {
					return fmt.Errorf("node %d delivered %s %d times", i+1, id, per[id])
				}
			}
		}
		return nil
	})
}

// TestStreamPeerRestart: a node of a 20-node ring on streams is closed
// while messages flow and restarted with the same id at the same address.
// Its predecessor keeps what it could not send (queued, or sent and not
// acknowledged), re-dials with backoff and re-sends it to the new
// instance, so the messages published while it was down reach every node,
// and so do new ones.
func TestStreamPeerRestart(t *testing.T) {
	const n, k = 20, 7 // node k+1 (index k) restarts
	nodes, recs, factory := startRing(t, n, Config{})
	ids := publishAll(t, nodes, "before", 2)
	waitDelivered(t, 20*time.Second, recs, ids)

	addr := nodes[k].Endpoint
	if err := nodes[k].Close(); err != nil {
		t.Fatal(err)
	}
	live := append(append([]*GossipNode(nil), nodes[:k]...), nodes[k+1:]...)
	during := publishAll(t, live, "during", 2)

	// Restart: same id, same address, fresh state.
	rec := newRecorder(-1)
	restarted := NewGossipNode(nodes[k].Hash, addr, NewLocalStorage(), nil, nil, factory, WithDeliveryHandler(rec.handle))
	if err := restarted.StartGRPCServer(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restarted.Close() })
	next := nodes[(k+1)%n]
	if err := restarted.AddNeighbor(next.Hash, next.Endpoint); err != nil {
		t.Fatal(err)
	}
	nodes[k], recs[k] = restarted, rec
	after := publishAll(t, nodes, "after", 1)

	// Every node but the restarted one gets everything; the restarted one
	// gets what was published while it was down (it was never delivered
	// by this instance) and after.
	others := append(append([]*recorder(nil), recs[:k]...), recs[k+1:]...)
	waitDelivered(t, 30*time.Second, others, append(append(ids, during...), after...))
	waitDelivered(t, 30*time.Second, []*recorder{rec}, append(during, after...))

	prev := nodes[k-1].Stats().Stream
	if prev.Reconnects == 0 {
		t.Errorf("the predecessor never re-dialled: %+v", prev)
	}
	t.Logf("predecessor: reconnects %d, re-sent %d, dropped %d; restarted node repaired %d",
		prev.Reconnects, prev.Resent, prev.FramesDropped, restarted.Stats().Stream.Repaired)
}

// seedOnly serves only the seed's unary RPC: Stream answers Unimplemented,
// as a node of the seed system would.
type seedOnly struct {
	pbgrpc.UnimplementedGossipServer
	n *GossipNode
}

func (s seedOnly) PutMessageToClient(ctx context.Context, m *pb.GossipMessage) (*pb.GossipAck, error) {
	return s.n.PutMessageToClient(ctx, m)
}

// startSeedOnly starts a node that speaks only PutMessageToClient, both
// ways (it sends with the unary transport too).
func startSeedOnly(t *testing.T, id string, rec *recorder) *GossipNode {
	t.Helper()
	nd := NewGossipNode(id, "", nil, nil, nil, nil, WithStreaming(false), WithFanout(FanoutAll), WithDeliveryHandler(rec.handle))
	t.Cleanup(func() { nd.Close() }) // after the server stops (cleanups run last first)
	nd.Endpoint = serveGossip(t, seedOnly{n: nd})
	return nd
}

// TestStreamMixedUnaryPeers: 16 streaming nodes and 4 that speak only the
// seed's unary RPC, on a random 4-regular graph of 20. Streaming nodes
// find out (the stream answers Unimplemented), send to those peers with
// PutMessageToClient, keep streams between themselves, and every node
// gets every message once.
func TestStreamMixedUnaryPeers(t *testing.T) {
	const streaming, unary = 16, 4
	var nodes []*GossipNode
	var recs []*recorder
	for i := range streaming {
		r := newRecorder(-1)
		nd := NewGossipNode(nodeID(i+1), "", nil, nil, nil, nil, WithFanout(FanoutAll), WithDeliveryHandler(r.handle))
		if err := nd.StartGRPCServer("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes, recs = append(nodes, nd), append(recs, r)
	}
	for i := range unary {
		r := newRecorder(-1)
		nodes, recs = append(nodes, startSeedOnly(t, fmt.Sprintf("seed-%d", i+1), r)), append(recs, r)
	}
	g, err := topology.RandomRegular(streaming+unary, 4, 7)
	if err != nil {
		t.Fatal(err)
	}
	wantStream, wantUnary := make([]int, len(nodes)), make([]int, len(nodes))
	for i, nbs := range g {
		for _, j := range nbs {
			if err := nodes[i].AddNeighbor(nodes[j].Hash, nodes[j].Endpoint); err != nil {
				t.Fatal(err)
			}
			if j < streaming {
				wantStream[i]++
			} else {
				wantUnary[i]++
			}
		}
	}
	ids := publishAll(t, nodes, "m", 3)
	waitDelivered(t, 20*time.Second, recs, ids)
	// A link finds out on its first stream, which it opens at once.
	testutil.WaitFor(t, 10*time.Second, "every streaming node using PutMessageToClient for the unary peers", func() error {
		for i, nd := range nodes[:streaming] {
			st := nd.Stats().Stream
			if st.StreamPeers != wantStream[i] || st.UnaryPeers != wantUnary[i] || st.UnaryFallbacks != uint64(wantUnary[i]) {
				return fmt.Errorf("%s: %d stream peers, %d unary, %d fallbacks; want %d, %d, %d",
					nd.Hash, st.StreamPeers, st.UnaryPeers, st.UnaryFallbacks, wantStream[i], wantUnary[i], wantUnary[i])
			}
		}
		return nil
	})
	for i, nd := range nodes[:streaming] {
		for _, ns := range nd.NeighborStats() {
			want := "stream"
			if strings.HasPrefix(ns.ID, "seed-") {
				want = "unary"
			}
			if ns.Transport != want {
				t.Errorf("node %d, neighbour %s: transport %q, want %q", i+1, ns.ID, ns.Transport, want)
			}
		}
	}
}

// TestStreamMaxPayload: a message with a payload of exactly
// MaxPayloadBytes (1 MiB by default) crosses the 20-node streaming ring
// intact (19 hops); one byte more is refused at the publisher.
func TestStreamMaxPayload(t *testing.T) {
	nodes, recs, _ := startRing(t, 20, Config{})
	max := nodes[0].Config().MaxPayloadBytes
	payload := make([]byte, max)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	got := make(chan string, 10)
	sub, err := nodes[19].Subscribe(4)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for d := range sub.C() {
			got <- d.Payload
		}
	}()
	if _, _, err := nodes[0].Publish(t.Context(), "big", payload); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, 20*time.Second, recs, []string{"big"})
	select {
	case p := <-got:
		if p != string(payload) {
			t.Fatalf("payload of %d bytes arrived as %d bytes (or altered)", len(payload), len(p))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery on the subscription")
	}
	sub.Close()
	_, _, err = nodes[0].Publish(t.Context(), "too-big", append(payload, 'x'))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("publish of MaxPayloadBytes+1: %v, want ResourceExhausted", err)
	}
}

// stuckPeer is a Gossip server whose Stream reads the hello and then
// nothing: gRPC flow control soon blocks the sender, as with a peer that
// is overloaded or hung.
type stuckPeer struct {
	pbgrpc.UnimplementedGossipServer
	hello chan struct{}
}

func (s *stuckPeer) Stream(stream grpc.BidiStreamingServer[pb.Envelope, pb.Envelope]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	select {
	case s.hello <- struct{}{}:
	default:
	}
	<-stream.Context().Done()
	return nil
}

func startStuckPeer(t *testing.T) (addr string, hello chan struct{}) {
	t.Helper()
	p := &stuckPeer{hello: make(chan struct{}, 1)}
	return serveGossip(t, p), p.hello
}

// TestStreamSlowPeerDegrades: a neighbour that stops reading does not
// hold up the others and loses nothing silently: past StreamQueueBytes
// its messages are announced instead of pushed (Deferred), and a run of
// announcements is merged into one range, so its queue stays bounded,
// while a healthy neighbour gets every message.
func TestStreamSlowPeerDegrades(t *testing.T) {
	stuckAddr, hello := startStuckPeer(t)
	good := newRecorder(-1)
	b := NewGossipNode("b", "", nil, nil, nil, nil, WithDeliveryHandler(good.handle))
	if err := b.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a := NewGossipNode("a", "", nil, nil, nil, nil, WithConfig(Config{StreamQueueBytes: 8 << 10}))
	t.Cleanup(func() { a.Close() })
	for id, addr := range map[string]string{"stuck": stuckAddr, "b": b.ListenAddr()} {
		if err := a.AddNeighbor(id, addr); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Await(t, hello, 10*time.Second, "the stuck peer's stream")
	payload := []byte(strings.Repeat("x", 1000))
	var ids []string
	for i := range 2000 {
		id := fmt.Sprintf("m%d", i)
		if _, _, err := a.Publish(t.Context(), id, payload); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	waitDelivered(t, 20*time.Second, []*recorder{good}, ids)
	st := a.Stats().Stream
	if st.Deferred == 0 {
		t.Errorf("deferred %d: want > 0 for a peer that stopped reading", st.Deferred)
	}
	if st.QueuedBytes > 4*(8<<10)+2000 {
		t.Errorf("queued %d bytes: the stuck peer's queue is not bounded", st.QueuedBytes)
	}
	t.Logf("stuck peer: deferred %d, dropped %d, queued %d bytes", st.Deferred, st.FramesDropped, st.QueuedBytes)
}

// TestStreamSaturationRejectsPublish: when the node as a whole has more
// than MaxQueuedBytes queued, Publish waits for room until its deadline
// and then fails with ResourceExhausted; nothing is recorded, so the same
// id can be published again later.
func TestStreamSaturationRejectsPublish(t *testing.T) {
	stuckAddr, hello := startStuckPeer(t)
	a := NewGossipNode("a", "", nil, nil, nil, nil, WithConfig(Config{StreamQueueBytes: 1 << 20, MaxQueuedBytes: 32 << 10}))
	t.Cleanup(func() { a.Close() })
	if err := a.AddNeighbor("stuck", stuckAddr); err != nil {
		t.Fatal(err)
	}
	testutil.Await(t, hello, 10*time.Second, "the stuck peer's stream")
	payload := []byte(strings.Repeat("y", 4000))
	var rejected error
	var rejectedID string
	for i := 0; i < 5000 && rejected == nil; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		id := fmt.Sprintf("m%d", i)
		_, _, err := a.Publish(ctx, id, payload)
		cancel()
		if err != nil {
			rejected, rejectedID = err, id
		}
	}
	if status.Code(rejected) != codes.ResourceExhausted || !errorsIs(rejected, ErrSaturated) {
		t.Fatalf("publish into a saturated node: %v, want ResourceExhausted (ErrSaturated)", rejected)
	}
	st := a.Stats().Stream
	if st.PublishRejected == 0 || st.PublishWaits == 0 {
		t.Errorf("publish waits %d, rejected %d: want both counted", st.PublishWaits, st.PublishRejected)
	}
	if a.seen(rejectedID) {
		t.Errorf("the rejected message %q was recorded", rejectedID)
	}
}

// rawStream opens Gossip.Stream to addr on its own connection.
func rawStream(t *testing.T, addr string) grpc.BidiStreamingClient[pb.Envelope, pb.Envelope] {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	s, err := pbgrpc.NewGossipClient(cc).Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStreamBadInput: a stream must start with a valid hello; garbage
// among a batch's messages is counted and skipped without losing the rest
// of the batch or the stream; a peer hanging up mid-stream costs nothing.
func TestStreamBadInput(t *testing.T) {
	rec := newRecorder(-1)
	nd := NewGossipNode("srv", "", nil, nil, nil, nil, WithDeliveryHandler(rec.handle))
	if err := nd.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })

	for _, first := range []*pb.Envelope{
		{},                            // no hello
		{Hello: &pb.Hello{Id: "srv"}}, // the node's own id
		{Hello: &pb.Hello{Id: strings.Repeat("x", 300)}}, // over MaxHashBytes
	} {
		s := rawStream(t, nd.ListenAddr())
		if err := s.Send(first); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("first envelope %v: %v, want InvalidArgument", first, err)
		}
	}

	s := rawStream(t, nd.ListenAddr())
	good, err := proto.Marshal(&pb.GossipMessage{Hash: "ok-1", FromHash: "peer", Payload: "fine"})
	if err != nil {
		t.Fatal(err)
	}
	good2, _ := proto.Marshal(&pb.GossipMessage{Hash: "ok-2", FromHash: "peer"})
	empty, _ := proto.Marshal(&pb.GossipMessage{FromHash: "peer"}) // no hash: invalid
	if err := s.Send(&pb.Envelope{Hello: &pb.Hello{Id: "peer"}, Messages: [][]byte{{0xff, 0xff, 0xff}, good, empty}}); err != nil {
		t.Fatal(err)
	}
	hello, err := s.Recv()
	if err != nil || hello.GetHello().GetId() != "srv" {
		t.Fatalf("answer to hello: %v, %v", hello, err)
	}
	if err := s.Send(&pb.Envelope{Messages: [][]byte{good2}, Ihave: []*pb.SeqRange{{Node: "", First: 5, Last: 1}}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "both good messages delivered and ACKed", func() error {
		if rec.count("ok-1") != 1 || rec.count("ok-2") != 1 {
			return fmt.Errorf("delivered ok-1 %d, ok-2 %d times", rec.count("ok-1"), rec.count("ok-2"))
		}
		return nil
	})
	for {
		env, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if env.GetAck() == 2 {
			break
		}
	}
	if st := nd.Stats(); st.Stream.BadFrames < 2 || st.Invalid < 1 {
		t.Errorf("bad frames %d, invalid %d: want the garbage and the hashless message counted", st.Stream.BadFrames, st.Invalid)
	}
	s.CloseSend() // hang up mid-stream: the node goes on serving
	if _, _, err := nd.Publish(t.Context(), "after", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// ackPeer is a Gossip server whose Stream hands each envelope it reads to
// the test and sends whatever ACKs the test tells it to.
type ackPeer struct {
	pbgrpc.UnimplementedGossipServer
	got  chan *pb.Envelope
	acks chan *pb.Envelope
}

func (p *ackPeer) Stream(stream grpc.BidiStreamingServer[pb.Envelope, pb.Envelope]) error {
	go func() {
		for env := range p.acks {
			stream.Send(env)
		}
	}()
	for {
		env, err := stream.Recv()
		if err != nil {
			return nil
		}
		p.got <- env
	}
}

// TestStreamCumulativeAck pins the meaning of the cumulative ACK: the
// number of envelopes the peer has handled on the stream, the hello
// included. An ACK that covers only the hello releases nothing; the next
// one releases the message, which a broken stream would otherwise re-send.
func TestStreamCumulativeAck(t *testing.T) {
	p := &ackPeer{got: make(chan *pb.Envelope, 16), acks: make(chan *pb.Envelope)}
	addr := serveGossip(t, p)
	a := NewGossipNode("a", "", nil, nil, nil, nil)
	t.Cleanup(func() { a.Close() })
	if err := a.AddNeighbor("p", addr); err != nil {
		t.Fatal(err)
	}
	next := func() *pb.Envelope {
		select {
		case env := <-p.got:
			return env
		case <-time.After(10 * time.Second):
			t.Fatal("no envelope from the node")
			return nil
		}
	}
	if next().GetHello().GetId() != "a" {
		t.Fatal("the first envelope is not the hello")
	}
	if _, _, err := a.Publish(t.Context(), "m1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for env := next(); len(env.GetMessages()) == 0; env = next() {
	}
	// ACK the hello only, with a prune that shows when the node has
	// handled that envelope (it handles them in order).
	p.acks <- &pb.Envelope{Ack: 1, Prune: []string{"a"}}
	testutil.WaitFor(t, 5*time.Second, "the node handling the first ACK", func() error {
		if a.Stats().Stream.PrunesReceived != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	if got := a.Stats().Stream.CopiesAcked; got != 0 {
		t.Fatalf("an ACK of the hello released %d messages", got)
	}
	p.acks <- &pb.Envelope{Ack: 2}
	testutil.WaitFor(t, 5*time.Second, "the message's ACK", func() error {
		if got := a.Stats().Stream.CopiesAcked; got != 1 {
			return fmt.Errorf("acked %d", got)
		}
		return nil
	})
	close(p.acks)
}
