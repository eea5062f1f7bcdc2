package core

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// TestStepFramesPerMessage checks that the fresh messages of one envelope
// each get their own frames, though Step carves them from one allocation:
// every frame of a result is its message's, and appending to one result's
// frames does not overwrite the next one's.
func TestStepFramesPerMessage(t *testing.T) {
	peers := []string{"p0", "p1", "p2", "p3"}
	n := newTestNode(t, "self", nil, 1, peers...)
	for _, id := range peers {
		n.SetPeerKind(id, KindStream)
	}
	env := &pb.Envelope{}
	for i := range 5 {
		w, err := proto.Marshal(&pb.GossipMessage{Hash: fmt.Sprintf("m%d", i), Origin: "p0", Payload: "x", SeqNode: "p0", SeqEpoch: 1, Seq: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		env.Messages = append(env.Messages, w)
	}
	res := n.Step(t0, "p0", Decode(env, "p0"))
	if len(res.Fresh) != 5 {
		t.Fatalf("%d fresh results, want 5", len(res.Fresh))
	}
	for i := range res.Fresh {
		res.Fresh[i].Out = append(res.Fresh[i].Out, Out{Peer: "appended"}, Out{Peer: "appended"})
	}
	for i, r := range res.Fresh {
		if len(r.Out) != len(peers)+1 { // 3 other peers, and two appended
			t.Fatalf("message %d: %d frames, want %d", i, len(r.Out), len(peers)+1)
		}
		for _, o := range r.Out[:len(r.Out)-2] {
			if o.Peer == "appended" || o.Frame.Range.GetFirst() != uint64(i+1) {
				t.Fatalf("message %d: frame to %q for number %d: another result's", i, o.Peer, o.Frame.Range.GetFirst())
			}
		}
	}
	if n.outArena != nil {
		t.Fatal("Step kept its frame arena: the next Receive would write into this envelope's results")
	}
}

// BenchmarkStepEnvelope is the core's work for envelopes of 16 fresh
// messages from one of 8 stream neighbours, as a node receives them under
// load: decode, Step (accept, store, frames for the 7 others). Per op is
// one message.
func BenchmarkStepEnvelope(b *testing.B) {
	const batch = 16
	peers := []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"}
	n := newTestNode(b, "self", nil, 1, peers...)
	for _, id := range peers {
		n.SetPeerKind(id, KindStream)
	}
	payload := string(make([]byte, 100))
	envs := make([]*pb.Envelope, (b.N+batch-1)/batch)
	for i := range envs {
		envs[i] = &pb.Envelope{}
		for j := range batch {
			seq := uint64(i*batch + j + 1)
			w, err := proto.Marshal(&pb.GossipMessage{Hash: fmt.Sprintf("m%d", seq), FromHash: "p0", Origin: "p0", Payload: payload, SeqNode: "p0", SeqEpoch: 1, Seq: seq})
			if err != nil {
				b.Fatal(err)
			}
			envs[i].Messages = append(envs[i].Messages, w)
		}
	}
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for _, env := range envs {
		now = now.Add(time.Millisecond)
		if res := n.Step(now, "p0", Decode(env, "p0")); len(res.Fresh) != batch {
			b.Fatalf("%d fresh of %d", len(res.Fresh), batch)
		}
	}
}
