package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
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

// startRing starts n real gRPC nodes on 127.0.0.1:0 sharing one storage,
// router and factory (as the seed's demo does) and links them in a ring.
func startRing(t *testing.T, n int, cfg Config) ([]*GossipNode, []*recorder, *GossipClientFactory) {
	t.Helper()
	storage, router, factory := NewLocalStorage(), NewRandomRouter(), NewGossipClientFactory()
	nodes := make([]*GossipNode, n)
	recs := make([]*recorder, n)
	for i := range nodes {
		recs[i] = newRecorder(-1)
		nodes[i] = NewGossipNode(nodeID(i+1), "", storage, router, nil, factory,
			WithConfig(cfg), WithSeed(uint64(i+1)), WithDeliveryHandler(recs[i].handle))
		if err := nodes[i].StartGRPCServer("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if nodes[i].Endpoint != nodes[i].ListenAddr() {
			t.Fatalf("Endpoint %q not set to the bound address %q", nodes[i].Endpoint, nodes[i].ListenAddr())
		}
	}
	for i, nd := range nodes {
		next := nodes[(i+1)%n]
		if err := nd.AddNeighbor(next.Hash, next.Endpoint); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Close()
		}
		factory.Release()
	})
	return nodes, recs, factory
}

// TestGRPCRing20 is the seed's demo as a test: 20 nodes in a ring on real
// gRPC, 3 messages from every node, every node delivers all 60 exactly once,
// over the seed's unary RPC and over streams.
func TestGRPCRing20(t *testing.T) {
	for _, streaming := range []bool{false, true} {
		t.Run(fmt.Sprintf("streaming=%v", streaming), func(t *testing.T) { testGRPCRing20(t, streaming) })
	}
}

func testGRPCRing20(t *testing.T, streaming bool) {
	const n, perNode = 20, 3
	nodes, recs, _ := startRing(t, n, Config{DisableStreaming: !streaming})
	for i, nd := range nodes {
		for m := range perNode {
			msg := &pb.GossipMessage{Hash: fmt.Sprintf("%s/msg-%d", nd.Hash, m), FromHash: nd.Hash, Payload: "hello"}
			ack, err := nd.PutMessageToClient(context.Background(), msg)
			if err != nil {
				t.Fatalf("publish on node %d: %v", i, err)
			}
			if ack.GetHash() != msg.Hash || ack.GetFrom() != nd.Hash || ack.GetDuplicate() {
				t.Fatalf("ack = %v", ack)
			}
		}
	}
	testutil.WaitFor(t, 20*time.Second, "all deliveries", func() error {
		for i, r := range recs {
			if total, _ := r.snapshot(); total != n*perNode {
				return fmt.Errorf("node %d delivered %d/%d", i, total, n*perNode)
			}
		}
		return nil
	})
	for i, r := range recs {
		_, per := r.snapshot()
		for id, c := range per {
			if c != 1 {
				t.Errorf("node %d delivered %s %d times", i, id, c)
			}
		}
	}
	// In a directed ring every message travels n-1 hops and is never
	// duplicated: each node forwards each message at most once. Over
	// streams, in real time on a loaded machine, the node behind a source
	// may graft a message it heard of by IHAVE before the ring's 19-hop
	// copy arrives (or a digest may repair it first): each extra copy must
	// be such an answer, and nothing else may add one.
	var sent, dups, repairs uint64
	for _, nd := range nodes {
		st := nd.Stats()
		sent += st.Sent + st.Stream.EagerSent
		dups += st.Duplicates
		repairs += st.Stream.GraftsServed + st.Stream.Repaired
		if streaming && (st.Stream.StreamPeers != 1 || st.Stream.UnaryPeers != 0 || st.Sent != 0) {
			t.Errorf("%s: %d stream and %d unary neighbours, %d unary sends; want 1, 0, 0", nd.Hash, st.Stream.StreamPeers, st.Stream.UnaryPeers, st.Sent)
		}
	}
	want := uint64(n * perNode * (n - 1))
	if !streaming && (sent != want || dups != 0) {
		t.Errorf("RPCs sent %d (want %d), duplicates %d (want 0)", sent, want, dups)
	}
	if streaming && (sent > want || sent+repairs < want || dups > repairs) {
		t.Errorf("eager copies %d (want %d, fewer only where grafts or repairs carried them), duplicates %d, grafts served + repairs %d (want duplicates <= that)", sent, want, dups, repairs)
	} else if streaming && dups > 0 {
		t.Logf("%d extra copies, each answering a graft or a digest", dups)
	}
}

// rawCodec sends bytes as they are, to put garbage on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" } // the server must decode with its proto codec

func TestGRPCBadInput(t *testing.T) {
	node := NewGossipNode("n1", "", nil, nil, nil, nil, WithConfig(Config{MaxPayloadBytes: 1024}))
	defer node.Close()
	if err := node.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(node.ListenAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := pbgrpc.NewGossipClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tests := []struct {
		name string
		msg  *pb.GossipMessage
		code codes.Code
	}{
		{"empty hash", &pb.GossipMessage{FromHash: "x", Payload: "p"}, codes.InvalidArgument},
		{"hash too long", &pb.GossipMessage{Hash: strings.Repeat("h", 257)}, codes.InvalidArgument},
		{"from too long", &pb.GossipMessage{Hash: "h", FromHash: strings.Repeat("f", 257)}, codes.InvalidArgument},
		{"payload over limit", &pb.GossipMessage{Hash: "h", Payload: strings.Repeat("p", 1025)}, codes.ResourceExhausted},
		{"payload far over limit", &pb.GossipMessage{Hash: "h", Payload: strings.Repeat("p", 4<<20)}, codes.ResourceExhausted},
		{"payload at limit", &pb.GossipMessage{Hash: "ok", Payload: strings.Repeat("p", 1024)}, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.PutMessageToClient(ctx, tc.msg)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.code)
			}
		})
	}

	garbage := [][]byte{
		{0xff, 0xff, 0xff, 0xff},         // invalid tag
		{0x0a, 0x05, 'a'},                // truncated length-delimited field
		{0x0a, 0x02, 0xc3, 0x28},         // hash that is not UTF-8
		[]byte("certainly not protobuf"), // text
	}
	for i, g := range garbage {
		var reply []byte
		err := cc.Invoke(ctx, pbgrpc.Gossip_PutMessageToClient_FullMethodName, g, &reply, grpc.ForceCodec(rawCodec{}))
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("garbage %d: code = %v (%v), want InvalidArgument", i, status.Code(err), err)
		}
	}

	// The node still serves, and nothing bad was recorded.
	ack, err := client.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "after", FromHash: "x", Payload: "fine"})
	if err != nil || ack.GetHash() != "after" || ack.GetFrom() != "n1" {
		t.Fatalf("after bad input: ack %v, err %v", ack, err)
	}
	st := node.Stats()
	// The payload far over the limit is refused by gRPC itself, before
	// validation: it is in neither count.
	if st.Delivered != 2 || st.Invalid != 4 || st.Malformed != uint64(len(garbage)) {
		t.Errorf("Delivered %d Invalid %d Malformed %d; want 2 4 %d", st.Delivered, st.Invalid, st.Malformed, len(garbage))
	}
}

// TestLocalErrors checks the error values seen by a library caller: they
// match the sentinels with errors.Is and carry the gRPC code.
func TestLocalErrors(t *testing.T) {
	node := NewGossipNode("n1", "", nil, nil, nil, nil)
	_, err := node.PutMessageToClient(context.Background(), &pb.GossipMessage{})
	if !errors.Is(err, ErrEmptyHash) || status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty hash: %v (code %v)", err, status.Code(err))
	}
	_, err = node.PutMessageToClient(context.Background(), nil)
	if !errors.Is(err, ErrNilMessage) {
		t.Errorf("nil message: %v", err)
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	if err := node.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	_, err = node.PutMessageToClient(context.Background(), &pb.GossipMessage{Hash: "h"})
	if !errors.Is(err, ErrClosed) || status.Code(err) != codes.Unavailable {
		t.Errorf("after Close: %v (code %v)", err, status.Code(err))
	}
	if err := node.StartGRPCServer("127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Errorf("StartGRPCServer after Close = %v", err)
	}
}

func TestStartGRPCServerErrors(t *testing.T) {
	a := NewGossipNode("a", "", nil, nil, nil, nil)
	defer a.Close()
	if err := a.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := a.StartGRPCServer("127.0.0.1:0"); !errors.Is(err, ErrServerStarted) {
		t.Errorf("second start = %v", err)
	}
	b := NewGossipNode("b", "", nil, nil, nil, nil)
	defer b.Close()
	err := b.StartGRPCServer(a.ListenAddr())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("port in use: %v", err)
	}
}

// hangingServer accepts PutMessageToClient and never answers.
type hangingServer struct {
	pbgrpc.UnimplementedGossipServer
	calls chan struct{}
}

func (h *hangingServer) PutMessageToClient(ctx context.Context, _ *pb.GossipMessage) (*pb.GossipAck, error) {
	h.calls <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestUnreachableNeighbors: a neighbour that is down and one that hangs
// get bounded retries with backoff, are counted, and the node keeps
// delivering and forwarding to healthy neighbours.
func TestUnreachableNeighbors(t *testing.T) {
	hang := &hangingServer{calls: make(chan struct{}, 100)}
	hangAddr := serveGossip(t, hang)

	// A port with nothing listening.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	cfg := Config{AckTimeout: 100 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 40 * time.Millisecond, MaxAttempts: 3, DisableStreaming: true}
	good := newRecorder(1)
	b := NewGossipNode("b", "", nil, nil, nil, nil, WithConfig(cfg), WithDeliveryHandler(good.handle))
	defer b.Close()
	if err := b.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	a := NewGossipNode("a", "", nil, nil, nil, nil, WithConfig(cfg))
	defer a.Close()
	for id, addr := range map[string]string{"dead": deadAddr, "hang": hangAddr, "b": b.ListenAddr()} {
		if err := a.AddNeighbor(id, addr); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.PutMessageToClient(context.Background(), &pb.GossipMessage{Hash: "m1", FromHash: "a"}); err != nil {
		t.Fatal(err)
	}
	testutil.Await(t, good.done, 10*time.Second, "delivery at b")
	testutil.WaitFor(t, 10*time.Second, "both bad neighbours given up", func() error {
		if st := a.Stats(); st.GaveUp != 2 {
			return fmt.Errorf("GaveUp = %d", st.GaveUp)
		}
		return nil
	})
	st := a.Stats()
	if st.Sent != 7 || st.Acked != 1 || st.AckFailed != 6 || st.Retries != 4 {
		t.Errorf("Sent %d Acked %d AckFailed %d Retries %d; want 7 1 6 4", st.Sent, st.Acked, st.AckFailed, st.Retries)
	}
	if got := len(hang.calls); got != 3 {
		t.Errorf("hanging neighbour got %d attempts, want 3", got)
	}
	for _, ns := range a.NeighborStats() {
		switch ns.ID {
		case "b":
			if ns.Acked != 1 || ns.Failed != 0 || ns.SRTT <= 0 {
				t.Errorf("b: %+v", ns)
			}
		default:
			if ns.Acked != 0 || ns.Failed != 3 || ns.Loss <= 0 {
				t.Errorf("%s: %+v", ns.ID, ns)
			}
		}
	}
}

func TestClientFactory(t *testing.T) {
	node := NewGossipNode("srv", "", nil, nil, nil, nil)
	defer node.Close()
	if err := node.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	f := NewGossipClientFactory()
	// Concurrent first use dials once.
	var wg sync.WaitGroup
	conns := make([]*grpc.ClientConn, 32)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], _ = f.Conn(node.ListenAddr())
		}()
	}
	wg.Wait()
	for _, c := range conns {
		if c == nil || c != conns[0] {
			t.Fatal("concurrent first use produced different connections")
		}
	}
	if f.Len() != 1 {
		t.Fatalf("Len = %d", f.Len())
	}
	ctx, cancel := f.ContextWithTimeout(context.Background())
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > DefaultRPCTimeout {
		t.Errorf("ContextWithTimeout deadline %v %v", dl, ok)
	}
	cli := f.GetClient(node.ListenAddr())
	if ack, err := cli.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "123", FromHash: "x", Payload: "hello"}); err != nil || ack.GetFrom() != "srv" {
		t.Fatalf("ack %v err %v", ack, err)
	}
	if _, err := f.GetClient("").PutMessageToClient(ctx, &pb.GossipMessage{Hash: "h"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty endpoint: %v", err)
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Release = %v", err)
	}
	if _, err := f.GetClient(node.ListenAddr()).PutMessageToClient(ctx, &pb.GossipMessage{Hash: "h"}); status.Code(err) != codes.Unavailable {
		t.Errorf("after Release: %v", err)
	}
}

// TestRegisterOnOwnServer: a node registered on a server without its
// ServerOptions still serves PutMessageToClient (garbage then gets gRPC's
// own Internal).
func TestRegisterOnOwnServer(t *testing.T) {
	node := NewGossipNode("own", "", nil, nil, nil, nil)
	defer node.Close()
	srv := grpc.NewServer()
	node.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(lis) }()
	defer func() { srv.Stop(); wg.Wait() }()

	f := NewGossipClientFactory()
	defer f.Release()
	ctx, cancel := f.ContextWithTimeout(context.Background())
	defer cancel()
	ack, err := f.GetClient(lis.Addr().String()).PutMessageToClient(ctx, &pb.GossipMessage{Hash: "h", Payload: "p"})
	if err != nil || ack.GetFrom() != "own" {
		t.Fatalf("ack %v err %v", ack, err)
	}
	cc, _ := f.Conn(lis.Addr().String())
	var reply []byte
	err = cc.Invoke(ctx, pbgrpc.Gossip_PutMessageToClient_FullMethodName, []byte{0xff, 0xff}, &reply, grpc.ForceCodec(rawCodec{}))
	if status.Code(err) != codes.Internal {
		t.Errorf("garbage without the node's codec: %v", err)
	}
}
