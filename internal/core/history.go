package core

import (
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Span is the numbers First..Last of a sequence, inclusive.
type Span struct{ First, Last uint64 }

// History decides which first receipts a node hands to its application
// (docs/DESIGN.md §13). A node without one (the zero History) delivers
// every message it receives for the first time, old or new.
type History struct {
	// Handled is, per sequence, the numbers a previous life of this node
	// delivered or deliberately did not deliver (sorted, disjoint spans):
	// a copy of one of them is a duplicate, and the sequence's other
	// numbers are delivered whenever they arrive (what the node missed
	// while it was down).
	Handled map[SeqKey][]Span
	// Horizon: a message of a sequence not in Handled, created (by its
	// origin's clock) before Horizon, is historic — recorded, stored and
	// relayed like any first receipt, but not handed to the application
	// (Result.Historic). Zero: no message is historic. A brand-new node
	// sets it to its start time (minus the catch-up window it asks for);
	// a restarted one to the oldest moment its Handled sets still cover.
	Horizon time.Time
}

// SetHistory installs h before any traffic: the Handled numbers become
// held in their sequences (so digests say so, and repair fetches only
// the gaps), and later receipts follow h's rules.
func (n *Node) SetHistory(now time.Time, h History) {
	n.horizon = h.Horizon
	n.prior = make(map[SeqKey][]Span, len(h.Handled))
	for k, spans := range h.Handled {
		if k.Node == "" || len(spans) == 0 {
			continue
		}
		n.prior[k] = spans
		t := n.track(now, k)
		for _, sp := range spans {
			if sp.First == 0 || sp.Last < sp.First {
				continue
			}
			if sp.First <= t.contiguous+1 {
				t.contiguous = max(t.contiguous, sp.Last)
			} else {
				t.above = append(t.above, span{sp.First, sp.Last})
			}
			t.max = max(t.max, sp.Last)
		}
		t.compact()
	}
}

// SetEpoch sets the epoch of this node's own sequence (before it numbers
// any message): a restarted node passes one above every epoch of its
// previous lives, so that no number of theirs is reused.
func (n *Node) SetEpoch(e uint64) {
	if e != 0 {
		n.epoch = e
	}
}

// Epoch is the epoch of this node's own sequence.
func (n *Node) Epoch() uint64 { return n.epoch }

// priorHas reports whether a previous life handled msg's number.
func (n *Node) priorHas(msg *pb.GossipMessage) bool {
	k, seq := keyOf(msg)
	spans := n.prior[k]
	if seq == 0 || len(spans) == 0 {
		return false
	}
	i := sort.Search(len(spans), func(i int) bool { return spans[i].Last >= seq })
	return i < len(spans) && spans[i].First <= seq
}

// historic reports whether a first receipt of msg is not for the
// application (see History.Horizon).
func (n *Node) historic(msg *pb.GossipMessage) bool {
	if n.horizon.IsZero() || msg.GetSeq() == 0 || msg.GetSeqNode() == "" || msg.GetCreatedUnixNano() == 0 {
		return false
	}
	if _, known := n.prior[SeqKey{Node: msg.GetSeqNode(), Epoch: msg.GetSeqEpoch()}]; known {
		return false
	}
	return msg.GetCreatedUnixNano() < n.horizon.UnixNano()
}

// Restore takes back a message a previous life delivered (from the
// delivery log), accepted at at: its id is de-duplicated until LongTTL
// after at, and it is stored for repair (peers that lack it get it from
// this node). msg is the forwarded copy, sequence fields set. Call it
// before any traffic, oldest first, after SetHistory.
func (n *Node) Restore(now time.Time, msg *pb.GossipMessage, at time.Time) {
	if msg.GetHash() == "" {
		return
	}
	n.st.Remember(msg.GetHash(), at.Add(n.cfg.LongTTL))
	key, seq := keyOf(msg)
	if seq == 0 || key.Node == "" || !at.Add(n.cfg.LongTTL).After(now) {
		return
	}
	wire, err := marshal(msg)
	if err != nil {
		return
	}
	n.store.put(&storedMsg{hash: msg.GetHash(), key: key, seq: seq, wire: wire, at: at, hops: msg.GetHops()}, n.holders.need)
}

func marshal(m *pb.GossipMessage) ([]byte, error) { return proto.Marshal(m) }
