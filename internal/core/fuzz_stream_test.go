package core

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// FuzzStreamFrames feeds arbitrary bytes, decoded as an Envelope, to a
// node's stream handlers — as the runtime does with what a peer sends —
// after the node has accepted and numbered some messages. Whatever the
// peer claims (absurd ranges, floors, digests, numbers), the node must not
// panic, must answer with bounded work, and must not deliver anything
// twice.
func FuzzStreamFrames(f *testing.F) {
	seed := func(env *pb.Envelope) {
		b, err := proto.Marshal(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&pb.Envelope{Ihave: []*pb.SeqRange{{Node: "p", Epoch: 1, First: 1, Last: 10}}})
	seed(&pb.Envelope{Graft: []*pb.SeqRange{{Node: "self", Epoch: 3, First: 1, Last: 1 << 62}}})
	seed(&pb.Envelope{Prune: []string{"self", ""}})
	seed(&pb.Envelope{Digest: &pb.Digest{Sequences: []*pb.SeqSummary{{Node: "self", Epoch: 3, Contiguous: 1 << 62, Above: []uint64{9, 2, 1 << 63}, Floor: 1 << 61}}}})
	m, _ := proto.Marshal(&pb.GossipMessage{Hash: "x", FromHash: "p", SeqNode: "q", SeqEpoch: 1, Seq: 1 << 63})
	seed(&pb.Envelope{Messages: [][]byte{m, {0xff}}, Repairs: [][]byte{m}})

	f.Fuzz(func(t *testing.T, data []byte) {
		env := new(pb.Envelope)
		if proto.Unmarshal(data, env) != nil {
			return
		}
		cfg := Config{GraftTimeout: time.Millisecond}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		n := NewNode("self", &cfg, NewStorage(&cfg), nil, 1)
		for _, p := range []string{"p", "q"} {
			n.AddNeighbor(p, p)
			n.SetPeerKind(p, KindStream)
		}
		now := t0
		for i := range 5 {
			if _, err := n.Receive(now, &pb.GossipMessage{Hash: string(rune('a' + i)), FromHash: "self"}); err != nil {
				t.Fatal(err)
			}
		}
		delivered := map[string]bool{}
		for _, w := range append(env.GetMessages(), env.GetRepairs()...) {
			msg := new(pb.GossipMessage)
			if proto.Unmarshal(w, msg) != nil {
				continue
			}
			res, err := n.ReceiveVia(now, msg, ViaEager)
			if err == nil && res.Fresh {
				if delivered[msg.GetHash()] {
					t.Fatalf("%q delivered twice", msg.GetHash())
				}
				delivered[msg.GetHash()] = true
			}
		}
		n.HandlePrune("p", env.GetPrune())
		n.HandleIHave(now, "p", env.GetIhave())
		if out := n.HandleGraft(now, "p", env.GetGraft()); len(out) > cfg.MaxGraft {
			t.Fatalf("graft answered with %d messages, limit %d", len(out), cfg.MaxGraft)
		}
		if d := env.GetDigest(); d != nil {
			if out := n.HandleDigest(now.Add(time.Second), "p", d); len(out) > cfg.MaxSyncMessages+1 {
				t.Fatalf("digest answered with %d frames", len(out))
			}
		}
		for range 3 {
			now = now.Add(cfg.GraftTimeout)
			for _, o := range n.Grafts(now) {
				if r := o.Frame.Range; r.GetLast()-r.GetFirst() >= uint64(cfg.MaxGraft) {
					t.Fatalf("graft of %d numbers", r.GetLast()-r.GetFirst()+1)
				}
			}
			n.Tick(now)
		}
		n.Digest(false)
	})
}
