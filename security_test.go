package gossip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/auth"
	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// testPKI is a CA in a temporary directory.
type testPKI struct {
	t      testing.TB
	dir    string
	ca     *auth.CA
	caFile string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := auth.NewCA(auth.DefaultTrustDomain, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{t: t, dir: t.TempDir(), ca: ca}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.caFile, auth.CertPEM(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPKI) files(id auth.Identity) (cert, key string) {
	p.t.Helper()
	is, err := p.ca.Issue(id, time.Time{}, time.Time{})
	if err != nil {
		p.t.Fatal(err)
	}
	cert, key = filepath.Join(p.dir, id.Kind.String()+"-"+id.Name+".pem"), filepath.Join(p.dir, id.Kind.String()+"-"+id.Name+"-key.pem")
	if err := auth.WriteFiles(cert, key, is.Cert, is.Key, true); err != nil {
		p.t.Fatal(err)
	}
	return cert, key
}

// security is node id's Security, with tokens if tokenFile is not "".
func (p *testPKI) security(id, tokenFile string) *auth.Security {
	p.t.Helper()
	cert, key := p.files(auth.NodeID(auth.DefaultTrustDomain, id))
	sec, err := auth.New(auth.Config{Cert: cert, Key: key, CA: p.caFile, TokenFile: tokenFile})
	if err != nil {
		p.t.Fatal(err)
	}
	return sec
}

// dialAs dials addr with a certificate for id from p (zero id: none), as
// a client of the node.
func (p *testPKI) dialAs(id auth.Identity, addr string) *grpc.ClientConn {
	p.t.Helper()
	var cert, key string
	if id.Name != "" {
		cert, key = p.files(id)
	}
	cfg, err := auth.ClientTLSConfig(p.caFile, cert, key, "")
	if err != nil {
		p.t.Fatal(err)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { cc.Close() })
	return cc
}

// startSecureNode starts node id with sec on 127.0.0.1:0, dialling with
// sec's credentials.
func startSecureNode(t *testing.T, id string, sec *auth.Security) *GossipNode {
	t.Helper()
	f := NewGossipClientFactory(sec.DialOption())
	n, err := New(id, "", nil, nil, nil, f, WithSecurity(sec), fastMembership())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		f.Release()
	})
	return n
}

// TestSecureCluster: three nodes with mTLS form a cluster and deliver
// messages; a rogue node with a certificate of another CA cannot join and
// never appears in a member list; a client certificate cannot push
// membership updates (the spoofed eviction), a node cannot claim another
// node's id, and clients need a certificate or a token.
func TestSecureCluster(t *testing.T) {
	p := newTestPKI(t)
	tokens := filepath.Join(p.dir, "tokens")
	os.WriteFile(tokens, []byte("tok-1\n"), 0o600)
	var nodes []*GossipNode
	for _, id := range []string{"a", "b", "c"} {
		n := startSecureNode(t, id, p.security(id, tokens))
		if len(nodes) > 0 {
			if _, err := n.Join(context.Background(), []string{nodes[0].ListenAddr()}); err != nil {
				t.Fatalf("%s joins over mTLS: %v", id, err)
			}
		} else {
			n.MarkReady()
		}
		nodes = append(nodes, n)
	}
	allSee(t, nodes, 10*time.Second, func(n *GossipNode) error {
		if c := aliveCount(n); c != 3 {
			return fmt.Errorf("%d alive", c)
		}
		return nil
	})
	if _, _, err := nodes[2].Publish(context.Background(), "", []byte("over mTLS")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "delivery everywhere", func() error {
		for _, n := range nodes {
			if n.Stats().Delivered != 1 {
				return fmt.Errorf("%s delivered %d", n.Hash, n.Stats().Delivered)
			}
		}
		return nil
	})

	// A rogue node: a valid-looking certificate of its own CA.
	rogueCA := newTestPKI(t)
	rogue := startSecureNode(t, "rogue", rogueCA.security("rogue", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := rogue.Join(ctx, []string{nodes[0].ListenAddr()}); err == nil {
		t.Fatal("a node of another CA joined")
	}
	if rogue.Stats().Security.CertUnknownCA == 0 {
		t.Error("the rogue did not count the cluster's certificate as of an unknown CA")
	}
	seed := nodes[0].ListenAddr()
	victim := nodes[1]
	ctx = context.Background()
	// A rogue that trusts the cluster's CA (so it gets as far as sending
	// its certificate) is refused by the seed's handshake.
	rc, rk := rogueCA.files(auth.NodeID(auth.DefaultTrustDomain, "rogue"))
	rcfg, err := auth.ClientTLSConfig(p.caFile, rc, rk, "")
	if err != nil {
		t.Fatal(err)
	}
	rconn, _ := grpc.NewClient(seed, grpc.WithTransportCredentials(credentials.NewTLS(rcfg)))
	defer rconn.Close()
	_, err = pbgrpc.NewMembershipServiceClient(rconn).Join(ctx, &pb.JoinRequest{Member: &pb.Member{Id: "rogue", Address: rogue.ListenAddr()}})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a rogue certificate's Join: %v; want Unavailable (handshake refused)", err)
	}

	// The issue-10 eviction: a client declares b dead.
	evict := &pb.PushUpdatesRequest{From: "a", FromAddress: seed, Updates: []*pb.MemberUpdate{{
		Id: victim.Hash, Address: victim.ListenAddr(), State: pb.MemberState_MEMBER_STATE_DEAD, Incarnation: 1 << 40}}}
	client := pbgrpc.NewMembershipServiceClient(p.dialAs(auth.ClientID(auth.DefaultTrustDomain, "ops"), seed))
	_, err = client.PushUpdates(ctx, evict)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "needs a node certificate") {
		t.Errorf("client certificate on PushUpdates: %v; want PermissionDenied", err)
	}
	// Node c's certificate claiming to be a.
	asC := pbgrpc.NewMembershipServiceClient(p.dialAs(auth.NodeID(auth.DefaultTrustDomain, "c"), seed))
	_, err = asC.PushUpdates(ctx, evict)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `claims node id "a"`) {
		t.Errorf("c's certificate claiming a: %v; want PermissionDenied", err)
	}
	_, err = asC.Join(ctx, &pb.JoinRequest{Member: &pb.Member{Id: "intruder", Address: "127.0.0.1:1"}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("c's certificate joining as intruder: %v; want PermissionDenied", err)
	}
	// No certificate: Unauthenticated; a token on a peer RPC: PermissionDenied.
	anon := pbgrpc.NewMembershipServiceClient(p.dialAs(auth.Identity{}, seed))
	if _, err := anon.PushUpdates(ctx, evict); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no certificate on PushUpdates: %v; want Unauthenticated", err)
	}
	tokCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer tok-1")
	if _, err := anon.PushUpdates(tokCtx, evict); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a token on PushUpdates: %v; want PermissionDenied", err)
	}
	// A plaintext client does not get past the handshake.
	plain, _ := grpc.NewClient(seed, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	if _, err := pbgrpc.NewMembershipServiceClient(plain).PushUpdates(ctx, evict); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext PushUpdates: %v; want Unavailable", err)
	}

	// Clients: a token or a client certificate publishes; nothing does not.
	ns := pbgrpc.NewNodeServiceClient(p.dialAs(auth.Identity{}, seed))
	if _, err := ns.Publish(ctx, &pb.PublishRequest{Payload: []byte("x")}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Publish without credentials: %v; want Unauthenticated", err)
	}
	if _, err := ns.Publish(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope"), &pb.PublishRequest{Payload: []byte("x")}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Publish with a wrong token: %v; want Unauthenticated", err)
	}
	if _, err := ns.Publish(tokCtx, &pb.PublishRequest{Payload: []byte("by token")}); err != nil {
		t.Errorf("Publish with a token: %v", err)
	}
	cl := pbgrpc.NewNodeServiceClient(p.dialAs(auth.ClientID(auth.DefaultTrustDomain, "ops"), seed))
	if _, err := cl.Publish(ctx, &pb.PublishRequest{Payload: []byte("by cert")}); err != nil {
		t.Errorf("Publish with a client certificate: %v", err)
	}
	// A client's PutMessageToClient cannot pose as a relay.
	g := pbgrpc.NewGossipClient(p.dialAs(auth.ClientID(auth.DefaultTrustDomain, "ops"), seed))
	if _, err := g.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "m1", Payload: "x", Origin: "b"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("client PutMessageToClient with an origin: %v; want PermissionDenied", err)
	}
	if _, err := g.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "m2", Payload: "seed client"}); err != nil {
		t.Errorf("client PutMessageToClient: %v", err)
	}

	testutil.WaitFor(t, 10*time.Second, "the client messages everywhere", func() error {
		for _, n := range nodes {
			if d := n.Stats().Delivered; d != 4 {
				return fmt.Errorf("%s delivered %d, want 4", n.Hash, d)
			}
		}
		return nil
	})
	for _, n := range append(nodes, rogue) {
		for _, m := range n.Members() {
			if m.ID == "rogue" && n != rogue || m.ID == "intruder" {
				t.Errorf("%s lists %s", n.Hash, m.ID)
			}
			if m.ID == victim.Hash && m.State != MemberAlive && n != rogue {
				t.Errorf("%s sees %s %v", n.Hash, m.ID, m.State)
			}
		}
	}
	st := nodes[0].Stats().Security
	if st.PermissionDenied < 2 || st.Unauthenticated < 3 || st.IdentityMismatches < 2 || st.CertUnknownCA < 1 {
		t.Errorf("security stats %+v", st)
	}
}

// TestSecureStreamBindsTheServer: a member that answers a stream as
// another node (a node with c's certificate running as "b") is refused by
// the dialler, and gets nothing over the stream, while a genuine
// neighbour gets the message.
func TestSecureStreamBindsTheServer(t *testing.T) {
	p := newTestPKI(t)
	a := startSecureNode(t, "a", p.security("a", ""))
	a.MarkReady()
	good := startSecureNode(t, "g", p.security("g", ""))
	impostor := startSecureNode(t, "b", p.security("c", "")) // id b, certificate of c
	if err := a.AddNeighbor("g", good.ListenAddr()); err != nil {
		t.Fatal(err)
	}
	if err := a.AddNeighbor("b", impostor.ListenAddr()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Publish(context.Background(), "m", []byte("for neighbours")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "g delivers", func() error {
		if good.Stats().Delivered != 1 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if d := impostor.Stats().Delivered; d != 0 {
		t.Errorf("the impostor delivered %d", d)
	}
}

// TestSecureMembershipBindsTheServer: an answer to a membership RPC must
// name the node of the server's certificate. A node holding another
// member's id (b) but its own certificate (c) cannot ack a probe for b,
// nor answer a sync or a join as b; the real member can.
func TestSecureMembershipBindsTheServer(t *testing.T) {
	p := newTestPKI(t)
	a := startSecureNode(t, "a", p.security("a", ""))
	real := startSecureNode(t, "b", p.security("b", ""))
	impostor := startSecureNode(t, "b", p.security("c", "")) // id b, certificate of c
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		addr string
		want codes.Code
	}{{"the member itself", real.ListenAddr(), codes.OK}, {"an impostor", impostor.ListenAddr(), codes.PermissionDenied}} {
		cli, err := a.transport.Membership(tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cli.Ping(ctx, &pb.PingRequest{Seq: 1, From: "a", FromAddress: a.ListenAddr(), Target: "b"})
		if status.Code(err) != tc.want {
			t.Errorf("%s: ping answered with %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != codes.OK && !strings.Contains(err.Error(), `certificate is for node "c"`) {
			t.Errorf("%s: the error does not name the certificate: %v", tc.name, err)
		}
		_, err = cli.Sync(ctx, &pb.SyncRequest{From: "a", FromAddress: a.ListenAddr()})
		if status.Code(err) != tc.want {
			t.Errorf("%s: sync answered with %v, want %v", tc.name, err, tc.want)
		}
		_, err = cli.Join(ctx, &pb.JoinRequest{Member: &pb.Member{Id: "a", Address: a.ListenAddr(), State: pb.MemberState_MEMBER_STATE_ALIVE, Incarnation: 1}})
		if status.Code(err) != tc.want {
			t.Errorf("%s: join answered with %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestSecureReceiptsBound: trace receipts come from the node that
// delivered: a member cannot send them as another, nor slip another
// node's receipt into its own batch.
func TestSecureReceiptsBound(t *testing.T) {
	p := newTestPKI(t)
	a := startSecureNode(t, "a", p.security("a", ""))
	o := startSecureNode(t, "o", p.security("o", ""))
	cli, err := a.transport.Membership(o.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	rcpt := func(node string) *pb.Receipt { return &pb.Receipt{Id: "m", Node: node, Hops: 1} }
	for _, tc := range []struct {
		from, node string
		want       codes.Code
	}{{"a", "a", codes.OK}, {"b", "b", codes.PermissionDenied}, {"a", "b", codes.InvalidArgument}} {
		_, err := cli.Receipts(context.Background(), &pb.ReceiptsRequest{From: tc.from, Receipts: []*pb.Receipt{rcpt(tc.node)}})
		if status.Code(err) != tc.want {
			t.Errorf("receipts from %q naming %q: %v, want %v", tc.from, tc.node, err, tc.want)
		}
	}
}
