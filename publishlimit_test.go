package gossip

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/auth"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// TestPublishLimit: each client gets its own bucket (here by token); over
// it Publish and a new PutMessageToClient fail with ResourceExhausted
// naming the limit, while other clients and relayed copies go on.
func TestPublishLimit(t *testing.T) {
	p := newTestPKI(t)
	tokens := filepath.Join(p.dir, "tokens")
	os.WriteFile(tokens, []byte("tok-a\ntok-b\n"), 0o600)
	sec := p.security("n", tokens)
	f := NewGossipClientFactory(sec.DialOption())
	defer f.Release()
	n, err := New("n", "", nil, nil, nil, f, WithSecurity(sec), WithPublishLimit(NewPublishLimiter(0.001, 2)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.MarkReady()
	if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cc := p.dialAs(auth.Identity{}, n.ListenAddr())
	ns, g := pbgrpc.NewNodeServiceClient(cc), pbgrpc.NewGossipClient(cc)
	as := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	for i := range 2 {
		if _, err := ns.Publish(as("tok-a"), &pb.PublishRequest{Payload: []byte("x")}); err != nil {
			t.Fatalf("publish %d within the burst: %v", i, err)
		}
	}
	_, err = ns.Publish(as("tok-a"), &pb.PublishRequest{Payload: []byte("x")})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "publish rate limit: the client of token sha256:") {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := g.PutMessageToClient(as("tok-a"), &pb.GossipMessage{Hash: "h-a", Payload: "x"}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a new PutMessageToClient over the limit: %v", err)
	}
	if _, err := ns.Publish(as("tok-b"), &pb.PublishRequest{Payload: []byte("x")}); err != nil {
		t.Errorf("another client: %v", err)
	}
	// A relayed copy (with an origin) from a member is not limited.
	peer := pbgrpc.NewGossipClient(p.dialAs(auth.NodeID(auth.DefaultTrustDomain, "m"), n.ListenAddr()))
	for i := range 3 {
		if _, err := peer.PutMessageToClient(context.Background(), &pb.GossipMessage{Hash: "relayed-" + string(rune('a'+i)), FromHash: "m", Origin: "m", Payload: "x"}); err != nil {
			t.Errorf("relayed copy %d: %v", i, err)
		}
	}
	if got := n.Stats().Security.PublishRateLimited; got != 2 {
		t.Errorf("publish_rate_limited = %d, want 2", got)
	}
}

// TestMaxHeaderBytes: request metadata over MaxHeaderBytes is refused
// before the node sees the request (1,000 headers of 8 KiB were accepted).
func TestMaxHeaderBytes(t *testing.T) {
	n, ns := serveNodeService(t, "h")
	big := strings.Repeat("x", 8<<10)
	kv := make([]string, 0, 2000)
	for i := range 1000 {
		kv = append(kv, "h-"+strings.Repeat("k", i%7)+string(rune('a'+i%26))+"-"+strconv.Itoa(i), big)
	}
	_, err := ns.Publish(metadata.AppendToOutgoingContext(context.Background(), kv...), &pb.PublishRequest{Payload: []byte("x")})
	if err == nil {
		t.Fatal("8 MB of headers accepted")
	}
	t.Logf("8 MB of headers: %v", err)
	if n.Stats().Delivered != 0 {
		t.Error("the request reached the node")
	}
	if _, err := ns.Publish(metadata.AppendToOutgoingContext(context.Background(), "x-small", "1"), &pb.PublishRequest{Payload: []byte("x")}); err != nil {
		t.Errorf("a normal request after: %v", err)
	}
}
