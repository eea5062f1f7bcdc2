package core

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// This file is the receiving half of the streaming protocol's vocabulary:
// what every field of a received Envelope means. The runtime reads an
// envelope off a stream, decodes it (Decode, outside the node's lock),
// hands the stream-level fields to the stream's state (Stream.Receive)
// and the rest to the node (Node.Step), and carries out what they return.
// A change to the protocol's vocabulary touches this package and proto/
// only.

// Inbound is a received envelope with its messages decoded.
type Inbound struct {
	Env      *pb.Envelope
	Messages []*pb.GossipMessage // pushed eagerly
	Repairs  []*pb.GossipMessage // answers to grafts and digests
	Bad      []error             // messages that did not decode
}

// Decode parses the messages of env, which arrived from peer: a message
// without from_hash gets peer as its sender. It needs no node state, so
// the runtime calls it before taking the node's lock.
func Decode(env *pb.Envelope, peer string) *Inbound {
	in := &Inbound{Env: env}
	in.Messages = in.decode(env.GetMessages(), peer)
	in.Repairs = in.decode(env.GetRepairs(), peer)
	return in
}

func (in *Inbound) decode(wires [][]byte, peer string) []*pb.GossipMessage {
	if len(wires) == 0 {
		return nil
	}
	out := make([]*pb.GossipMessage, 0, len(wires))
	// One allocation for the envelope's messages, not one each. Nothing
	// keeps a decoded message past Step (what is forwarded and stored is
	// a new message and its bytes), so the block does not outlive its use.
	ms := make([]pb.GossipMessage, len(wires))
	for i, w := range wires {
		m := &ms[i]
		if err := proto.Unmarshal(w, m); err != nil {
			in.Bad = append(in.Bad, fmt.Errorf("%w: %w", ErrMalformed, err))
			continue
		}
		if m.GetFromHash() == "" {
			m.FromHash = peer
		}
		out = append(out, m)
	}
	return out
}

// The field numbers of GossipMessage's two payload fields (one is set).
var (
	payloadField       = fieldNumber("payload")
	binaryPayloadField = fieldNumber("binary_payload")
)

func fieldNumber(name protoreflect.Name) protowire.Number {
	f := (&pb.GossipMessage{}).ProtoReflect().Descriptor().Fields().ByName(name)
	if f == nil || f.Kind() != protoreflect.StringKind && f.Kind() != protoreflect.BytesKind {
		panic("core: GossipMessage has no string or bytes field " + string(name))
	}
	return f.Number()
}

// payloadIn returns the payload's bytes inside a serialized
// GossipMessage (capacity cut, so that no append can reach past them);
// nil when the message has no payload or the bytes do not parse (never
// for what Marshal wrote).
func payloadIn(wire []byte) []byte {
	var out []byte
	for len(wire) > 0 {
		num, typ, n := protowire.ConsumeTag(wire)
		if n < 0 {
			return nil
		}
		wire = wire[n:]
		if typ == protowire.BytesType && (num == payloadField || num == binaryPayloadField) {
			v, m := protowire.ConsumeBytes(wire)
			if m < 0 {
				return nil
			}
			out, wire = v[:len(v):len(v)], wire[m:] // the last one wins, as in Unmarshal
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, wire)
		if m < 0 {
			return nil
		}
		wire = wire[m:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ErrMalformed is a message whose bytes do not decode.
var ErrMalformed = errors.New("message does not decode as a GossipMessage")

// StepResult is what the runtime does with one received envelope.
type StepResult struct {
	// Fresh are the messages accepted for the first time, in order: the
	// runtime hands each to the application, then sends its Out (stream
	// neighbours) and Targets (unary ones).
	Fresh []Result
	// Reply goes back to the peer on the stream the envelope came on:
	// prunes of redundant copies, answers to grafts and digests.
	Reply []Frame
	// Out goes to other peers (or the same one on another stream):
	// grafts of announced messages that shorten a tree.
	Out []Out
	// Withdraw lists the sources the peer PRUNEd: eager copies of their
	// messages still queued for the peer become announcements
	// (Stream.Withdraw on each of the peer's streams).
	Withdraw []string
	// Rejected are the messages that did not decode or validate, for the
	// runtime to count and log; the rest of the envelope was handled.
	Rejected []error
}

// Step handles what env (decoded) from peer carries for the protocol:
// messages and repairs, PRUNE, IHAVE, GRAFT and digest. The stream-level
// fields (hello, ACK) are Stream.Receive's.
func (n *Node) Step(now time.Time, peer string, in *Inbound) StepResult {
	var res StepResult
	res.Rejected = in.Bad
	if k := len(in.Messages) + len(in.Repairs); k > 0 {
		// One allocation for the envelope's results and one for their
		// frames instead of one per message (see Node.outArena).
		res.Fresh = make([]Result, 0, k)
		n.outArena = make([]Out, 0, k*n.streamPeers())
	}
	n.stepMessages(now, peer, in.Messages, ViaEager, &res)
	n.stepMessages(now, peer, in.Repairs, ViaRepair, &res)
	n.outArena = nil // the results own their parts of it
	env := in.Env
	if ps := env.GetPrune(); len(ps) > 0 {
		n.HandlePrune(peer, ps)
		res.Withdraw = ps
	}
	if r := env.GetIhave(); len(r) > 0 {
		res.Out = append(res.Out, n.HandleIHave(now, peer, r)...)
	}
	if r := env.GetGraft(); len(r) > 0 {
		res.Reply = append(res.Reply, n.HandleGraft(now, peer, r)...)
	}
	if d := env.GetDigest(); d != nil {
		res.Reply = append(res.Reply, n.HandleDigest(now, peer, d)...)
	}
	return res
}

func (n *Node) stepMessages(now time.Time, peer string, msgs []*pb.GossipMessage, via Via, res *StepResult) {
	for _, m := range msgs {
		r, err := n.ReceiveVia(now, m, via)
		if err != nil {
			res.Rejected = append(res.Rejected, fmt.Errorf("message %q: %w", m.GetHash(), err))
			continue
		}
		if r.Prune != "" && !slices.ContainsFunc(res.Reply, func(f Frame) bool {
			return f.Kind == FramePrune && f.Range.GetNode() == r.Prune
		}) {
			res.Reply = append(res.Reply, Frame{Kind: FramePrune, Range: &pb.SeqRange{Node: r.Prune}})
		}
		if r.Fresh {
			res.Fresh = append(res.Fresh, r)
		}
	}
}

// StreamEvents is what the stream-level fields of a received envelope
// said.
type StreamEvents struct {
	// Hello is the peer's hello, when the envelope carried one.
	Hello *pb.Hello
	// Acked are the messages the peer's cumulative ACK released, and RTT
	// the round trip of the newest of them (for the hop latency).
	Acked []Frame
	RTT   time.Duration
	// BusyUntil is when the congestion the peer reported ends (zero:
	// none).
	BusyUntil time.Time
}

// Receive takes the stream-level fields of an envelope that arrived on
// the stream: it counts the envelope (for the cumulative ACK this end
// owes), releases what the peer's ACK covers, and records the limit its
// hello announces.
func (s *Stream) Receive(now time.Time, env *pb.Envelope) StreamEvents {
	var ev StreamEvents
	s.Received(env)
	if h := env.GetHello(); h != nil {
		ev.Hello = h
		s.peerMax = int(min(h.GetMaxEnvelopeBytes(), 1<<31))
	}
	if a := env.GetAck(); a > 0 {
		ev.Acked, ev.RTT = s.Acked(now, a)
	}
	if b := env.GetBusyMs(); b > 0 {
		ev.BusyUntil = now.Add(time.Duration(b) * time.Millisecond)
	}
	return ev
}

// CheckHello validates the first envelope of a stream a peer opened to
// node self: it must carry a hello with a valid id other than self's.
func CheckHello(cfg *Config, self string, env *pb.Envelope) (*pb.Hello, error) {
	h := env.GetHello()
	switch {
	case h == nil:
		return nil, fmt.Errorf("the first envelope of a stream must carry a hello")
	case h.GetId() == "" || len(h.GetId()) > cfg.MaxHashBytes:
		return nil, fmt.Errorf("hello: peer id of %d bytes, want 1..%d", len(h.GetId()), cfg.MaxHashBytes)
	case h.GetId() == self:
		return nil, fmt.Errorf("hello: the peer claims this node's own id %q", self)
	}
	return h, nil
}

// ConnectDigest is the digest a node sends on a stream that just came up
// (both ends do): each learns what the other holds at once, instead of
// at the next anti-entropy round, so that the store can evict what the
// peer has and the peer can graft what it lacks.
func (n *Node) ConnectDigest() Frame {
	n.counters.DigestsSent++
	d := n.Digest(false)
	d.Connect = true
	return Frame{Kind: FrameDigest, Digest: d}
}

// Copies is the number of messages env carries (pushed and repairs).
func Copies(env *pb.Envelope) int { return len(env.GetMessages()) + len(env.GetRepairs()) }

// SentTo records that an envelope went to peer (the ACK table's sent
// count, in messages).
func (n *Node) SentTo(peer string, env *pb.Envelope) {
	if k := Copies(env); k > 0 {
		n.st.RecordSentN(peer, k)
	}
}

// AckedBy records that peer acknowledged the messages of frames, the
// newest after rtt.
func (n *Node) AckedBy(now time.Time, peer string, frames []Frame, rtt time.Duration) {
	if len(frames) == 0 {
		return
	}
	n.st.RecordAckN(now, peer, len(frames), rtt, false)
	for _, f := range frames {
		if r := f.Range; r != nil {
			n.holds(peer, SeqKey{Node: r.GetNode(), Epoch: r.GetEpoch()}, r.GetFirst(), r.GetLast())
		}
	}
	n.store.evict(n.holders.need)
}

// UnaryFallback switches stream neighbour peer to the seed's unary RPC
// (it answered the stream with Unimplemented): the Router chooses it from
// now on, and what was queued or in flight for it on its stream is
// returned as messages to send with PutMessageToClient (announcements are
// replaced by the messages they announce, which the store still holds).
func (n *Node) UnaryFallback(peer string, frames []Frame) []*pb.GossipMessage {
	n.SetPeerKind(peer, KindUnary)
	var wires []Frame
	for _, f := range frames {
		switch f.Kind {
		case FrameMessage:
			wires = append(wires, f)
		case FrameIHave:
			wires = append(wires, n.Lookup(f.Range)...)
		}
	}
	out := make([]*pb.GossipMessage, 0, len(wires))
	for _, f := range wires {
		m := new(pb.GossipMessage)
		if err := proto.Unmarshal(f.Wire, m); err != nil {
			panic("core: a stored message does not decode: " + err.Error()) // our own bytes: a broken invariant
		}
		out = append(out, m)
	}
	return out
}
