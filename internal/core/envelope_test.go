package core

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
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

// TestPayloadIn checks that the payload view a fresh result carries is
// the message's payload, inside the serialized copy (not a copy of it),
// for both payload fields, and that payloadIn reads any field order and
// unknown fields as Unmarshal does.
func TestPayloadIn(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "p0", "p1")
	n.SetPeerKind("p0", KindStream)
	n.SetPeerKind("p1", KindStream)
	for i, m := range []*pb.GossipMessage{
		{Hash: "text", Origin: "p0", FromHash: "p0", Payload: "hello"},
		{Hash: "binary", Origin: "p0", FromHash: "p0", BinaryPayload: []byte{0xff, 0, 1}},
		{Hash: "empty", Origin: "p0", FromHash: "p0"},
	} {
		res, err := n.ReceiveVia(t0.Add(time.Duration(i)), m, ViaEager)
		if err != nil || !res.Fresh {
			t.Fatalf("%s: fresh=%v err=%v", m.GetHash(), res.Fresh, err)
		}
		want := m.GetPayload() + string(m.GetBinaryPayload())
		if string(res.Payload) != want {
			t.Errorf("%s: Payload %q, want %q", m.GetHash(), res.Payload, want)
		}
		if want == "" {
			if res.Payload != nil {
				t.Errorf("%s: Payload %q for no payload, want nil", m.GetHash(), res.Payload)
			}
			continue
		}
		w := res.Wire
		if at := bytes.Index(w, res.Payload); at < 0 || &w[at] != &res.Payload[0] || cap(res.Payload) != len(res.Payload) {
			t.Errorf("%s: Payload is not a capacity-cut view into Wire", m.GetHash())
		}
	}
	// Unknown fields before and after, and a second payload field: the
	// last one wins, as in proto.Unmarshal.
	wire := protowire.AppendTag(nil, 999, protowire.BytesType)
	wire = protowire.AppendBytes(wire, []byte("unknown"))
	wire = protowire.AppendTag(wire, payloadField, protowire.BytesType)
	wire = protowire.AppendString(wire, "first")
	wire = protowire.AppendTag(wire, 5, protowire.VarintType)
	wire = protowire.AppendVarint(wire, 3)
	wire = protowire.AppendTag(wire, payloadField, protowire.BytesType)
	wire = protowire.AppendString(wire, "second")
	var m pb.GossipMessage
	if err := proto.Unmarshal(wire, &m); err != nil {
		t.Fatal(err)
	}
	if got := payloadIn(wire); string(got) != m.GetPayload() {
		t.Errorf("payloadIn = %q, Unmarshal's payload %q", got, m.GetPayload())
	}
	if got := payloadIn(wire[:len(wire)-2]); got != nil {
		t.Errorf("payloadIn of truncated bytes = %q, want nil", got)
	}
}
