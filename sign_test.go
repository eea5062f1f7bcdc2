package gossip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/auth"
	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// signer is a Security with signing for node id of p.
func (p *testPKI) signer(id string) *auth.Security {
	p.t.Helper()
	cert, key := p.files(auth.NodeID(auth.DefaultTrustDomain, id))
	sec, err := auth.New(auth.Config{Cert: cert, Key: key, CA: p.caFile, Sign: true})
	if err != nil {
		p.t.Fatal(err)
	}
	return sec
}

// TestSignedCluster: with signing, messages published anywhere are
// delivered everywhere; a member (c, as if compromised) that injects an
// unsigned message, one signed by itself in b's name, b's message with
// its payload altered, or b's message replayed after the window, is
// refused with PermissionDenied, and none of them is delivered anywhere;
// a replay of a delivered id stays a duplicate.
func TestSignedCluster(t *testing.T) {
	p := newTestPKI(t)
	nodes, delivered := startSignedCluster(t, []string{"a", "b", "c"}, p.signer, "signed-")

	// What b would send, signed with b's key (the test holds it).
	b := p.signer("b")
	signedByB := func(hash, payload string, created time.Time) *pb.GossipMessage {
		m := &pb.GossipMessage{Hash: hash, Origin: "b", Payload: payload, CreatedUnixNano: created.UnixNano()}
		b.SignMessage(m)
		m.FromHash = "c"
		return m
	}
	c := p.signer("c")
	bySelf := &pb.GossipMessage{Hash: "forged-2", Origin: "b", Payload: "c speaking for b", CreatedUnixNano: time.Now().UnixNano()}
	c.SignMessage(bySelf)
	bySelf.FromHash = "c"
	altered := signedByB("forged-3", "the real payload", time.Now())
	altered.Payload = "an altered payload"
	asC := pbgrpc.NewGossipClient(p.dialAs(auth.NodeID(auth.DefaultTrustDomain, "c"), nodes[0].ListenAddr()))
	for _, tc := range []struct {
		name string
		m    *pb.GossipMessage
		want string
	}{
		{"unsigned", &pb.GossipMessage{Hash: "forged-1", FromHash: "c", Origin: "b", Payload: "x", CreatedUnixNano: time.Now().UnixNano()}, "is not signed"},
		{"signed by c as b", bySelf, `claims origin "b" but is signed by spiffe://gossip/node/c`},
		{"altered", altered, "does not match its content (forged or altered)"},
		{"replayed after the window", signedByB("forged-4", "old", time.Now().Add(-DefaultConfig().LongTTL-time.Minute)), "more than 10m0s ago"},
		{"from the future", signedByB("forged-5", "future", time.Now().Add(5*time.Minute)), "ahead of this node's clock"},
	} {
		_, err := asC.PutMessageToClient(context.Background(), tc.m)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want PermissionDenied with %q", tc.name, err, tc.want)
		}
	}
	// A replay of a delivered message (b's, signed) is a duplicate.
	ok := signedByB("genuine", "b's genuine message", time.Now())
	if _, err := asC.PutMessageToClient(context.Background(), ok); err != nil {
		t.Fatalf("a genuine message of b relayed by c: %v", err)
	}
	delivered(4)
	ack, err := asC.PutMessageToClient(context.Background(), ok)
	if err != nil || !ack.GetDuplicate() {
		t.Errorf("replayed id: %v, %v; want a duplicate", ack, err)
	}
	delivered(4)
	st := nodes[0].Stats().Security
	if st.MessagesUnsigned != 1 || st.MessagesForged != 2 || st.MessagesStale != 2 {
		t.Errorf("security stats %+v", st)
	}
}

// TestSignedMixed: a node without signing cannot get its messages into a
// signing cluster (they are refused as unsigned): every node must sign.
func TestSignedMixed(t *testing.T) {
	p := newTestPKI(t)
	a := startSecureNode(t, "a", p.signer("a"))
	a.MarkReady()
	plain := startSecureNode(t, "p", p.security("p", ""))
	if _, err := plain.Join(context.Background(), []string{a.ListenAddr()}); err != nil {
		t.Fatal(err)
	}
	plain.MarkReady()
	if _, _, err := plain.Publish(context.Background(), "unsigned-1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the refusal", func() error {
		if a.Stats().Security.MessagesUnsigned == 0 {
			return fmt.Errorf("not refused yet")
		}
		return nil
	})
	if a.Stats().Delivered != 0 {
		t.Error("a signing node delivered an unsigned message")
	}
}

// transitionSigner is a Security that signs in the signing transition
// (auth.Config.SignTransition): unsigned messages are still accepted.
func (p *testPKI) transitionSigner(id string) *auth.Security {
	p.t.Helper()
	cert, key := p.files(auth.NodeID(auth.DefaultTrustDomain, id))
	sec, err := auth.New(auth.Config{Cert: cert, Key: key, CA: p.caFile, Sign: true, SignTransition: true})
	if err != nil {
		p.t.Fatal(err)
	}
	return sec
}

// TestSignTransitionMixed: the middle step of turning signing on. Two
// nodes in the signing transition and one not signing yet: every message
// published anywhere is delivered everywhere (the transition nodes accept
// the unsigned ones, counted in messages_unsigned_accepted), while a
// signed message whose signature does not check — another node's
// signature under b's name, an altered payload — is still refused with
// PermissionDenied, counted as forged and delivered nowhere.
func TestSignTransitionMixed(t *testing.T) {
	p := newTestPKI(t)
	if _, err := auth.New(auth.Config{Cert: p.caFile, Key: p.caFile, CA: p.caFile, SignTransition: true}); err == nil || !strings.Contains(err.Error(), "--sign-transition needs --sign") {
		t.Errorf("SignTransition without Sign: %v", err)
	}
	nodes, delivered := startSignedCluster(t, []string{"a", "b", "plain"}, func(id string) *auth.Security {
		if id == "plain" {
			return p.security(id, "")
		}
		return p.transitionSigner(id)
	}, "from-")

	b := p.signer("b")
	bySelf := &pb.GossipMessage{Hash: "forged-1", Origin: "b", Payload: "plain speaking for b", CreatedUnixNano: time.Now().UnixNano()}
	p.signer("plain").SignMessage(bySelf)
	bySelf.FromHash = "plain"
	altered := &pb.GossipMessage{Hash: "forged-2", Origin: "b", Payload: "the real payload", CreatedUnixNano: time.Now().UnixNano()}
	b.SignMessage(altered)
	altered.Payload, altered.FromHash = "an altered payload", "plain"
	asPlain := pbgrpc.NewGossipClient(p.dialAs(auth.NodeID(auth.DefaultTrustDomain, "plain"), nodes[0].ListenAddr()))
	for _, tc := range []struct {
		name string
		m    *pb.GossipMessage
		want string
	}{
		{"signed by plain as b", bySelf, `claims origin "b" but is signed by spiffe://gossip/node/plain`},
		{"altered", altered, "does not match its content (forged or altered)"},
	} {
		_, err := asPlain.PutMessageToClient(context.Background(), tc.m)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want PermissionDenied with %q", tc.name, err, tc.want)
		}
	}
	// One more message of the node that does not sign: still delivered.
	if _, _, err := nodes[2].Publish(context.Background(), "from-plain-2", []byte("x")); err != nil {
		t.Fatal(err)
	}
	delivered(4) // the forged ones nowhere
	for _, n := range nodes[:2] {
		st := n.Stats().Security
		if st.MessagesUnsignedAccepted < 2 || st.MessagesUnsigned != 0 {
			t.Errorf("%s: unsigned accepted %d, refused %d; want at least 2 (plain's messages) and 0", n.Hash, st.MessagesUnsignedAccepted, st.MessagesUnsigned)
		}
	}
	if f := nodes[0].Stats().Security.MessagesForged; f != 2 {
		t.Errorf("a: messages_forged = %d, want 2", f)
	}
}

// startSignedCluster starts the nodes ids, each with sec(id), joined
// through the first, waits until each sees all alive, and has each
// publish one message (id prefix+its id) that all deliver. delivered(n)
// waits until every node has delivered n messages.
func startSignedCluster(t *testing.T, ids []string, sec func(id string) *auth.Security, prefix string) (nodes []*GossipNode, delivered func(want uint64)) {
	t.Helper()
	for _, id := range ids {
		n := startSecureNode(t, id, sec(id))
		if len(nodes) > 0 {
			if _, err := n.Join(context.Background(), []string{nodes[0].ListenAddr()}); err != nil {
				t.Fatal(err)
			}
		} else {
			n.MarkReady()
		}
		nodes = append(nodes, n)
	}
	allSee(t, nodes, 10*time.Second, func(n *GossipNode) error {
		if c := aliveCount(n); c != len(ids) {
			return fmt.Errorf("%d alive", c)
		}
		return nil
	})
	delivered = func(want uint64) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, "deliveries", func() error {
			for _, n := range nodes {
				if d := n.Stats().Delivered; d != want {
					return fmt.Errorf("%s delivered %d, want %d", n.Hash, d, want)
				}
			}
			return nil
		})
	}
	for _, n := range nodes {
		if _, _, err := n.Publish(context.Background(), prefix+n.Hash, []byte("from "+n.Hash)); err != nil {
			t.Fatal(err)
		}
	}
	delivered(uint64(len(ids)))
	return nodes, delivered
}
