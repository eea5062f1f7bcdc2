package core

import (
	"testing"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

func histMsg(hash, seqNode string, epoch, seq uint64, created time.Time) *pb.GossipMessage {
	return &pb.GossipMessage{Hash: hash, FromHash: "a", Origin: seqNode, Payload: "p", Hops: 1,
		SeqNode: seqNode, SeqEpoch: epoch, Seq: seq, CreatedUnixNano: created.UnixNano()}
}

// A restarted node's History: numbers handled before are duplicates
// (whatever their id), the gaps are delivered, unknown sequences follow
// the horizon; a new node's horizon makes old messages historic.
func TestHistory(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	now := t0
	horizon := now.Add(-time.Minute)
	n.SetHistory(now, History{
		Handled: map[SeqKey][]Span{{Node: "o", Epoch: 7}: {{1, 5}, {8, 9}}},
		Horizon: horizon,
	})
	n.SetEpoch(42)
	cases := []struct {
		name           string
		msg            *pb.GossipMessage
		fresh, history bool
	}{
		{"handled number, new id", histMsg("x1", "o", 7, 3, now.Add(-time.Hour)), false, false},
		{"handled number above a gap", histMsg("x2", "o", 7, 9, now), false, false},
		{"a gap of a known sequence, however old", histMsg("x3", "o", 7, 6, now.Add(-time.Hour)), true, false},
		{"unknown sequence, before the horizon", histMsg("x4", "p", 1, 1, horizon.Add(-time.Second)), true, true},
		{"unknown sequence, after the horizon", histMsg("x5", "p", 1, 2, horizon.Add(time.Second)), true, false},
		{"no creation time", histMsg("x6", "p", 1, 3, time.Unix(0, 0)), true, false},
	}
	cases[5].msg.CreatedUnixNano = 0
	for _, c := range cases {
		res, err := n.Receive(now, c.msg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Fresh != c.fresh || res.Historic != c.history || res.Ack.GetDuplicate() == c.fresh {
			t.Errorf("%s: fresh %v historic %v duplicate %v; want fresh %v historic %v", c.name, res.Fresh, res.Historic, res.Ack.GetDuplicate(), c.fresh, c.history)
		}
	}
	if c := n.Counters(); c.Historic != 1 || c.Delivered != 3 || c.Duplicates != 2 {
		t.Errorf("counters: historic %d delivered %d duplicates %d", c.Historic, c.Delivered, c.Duplicates)
	}
	// A local publish is numbered in the new epoch.
	res, err := n.Receive(now, &pb.GossipMessage{Hash: "mine", Payload: "p"})
	if err != nil || res.Forward.GetSeqEpoch() != 42 || res.Forward.GetSeq() != 1 || res.Historic {
		t.Errorf("local publish: %v %v", res.Forward, err)
	}
	// The handled numbers count as held: a digest shows them, so peers
	// send only the gaps.
	found := false
	for _, s := range n.Digest(false).GetSequences() {
		if s.GetNode() == "o" {
			found = true
			if s.GetContiguous() != 6 || len(s.GetHeld()) != 1 || s.GetHeld()[0].GetFirst() != 8 {
				t.Errorf("digest of o/7: %v", s)
			}
		}
	}
	if !found {
		t.Error("the digest does not list o/7")
	}
}

// Restore makes a logged message a duplicate by id and servable to peers.
func TestRestore(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	now := t0
	m := histMsg("old", "o", 7, 1, now.Add(-time.Minute))
	n.Restore(now, m, now.Add(-time.Minute))
	res, err := n.Receive(now, &pb.GossipMessage{Hash: "old", FromHash: "a", Payload: "p"})
	if err != nil || res.Fresh {
		t.Fatalf("restored id received again: fresh %v err %v", res.Fresh, err)
	}
	if got := n.Lookup(&pb.SeqRange{Node: "o", Epoch: 7, First: 1, Last: 1}); len(got) != 1 || got[0].Hash != "old" {
		t.Errorf("the restored message is not served for repair: %v", got)
	}
}
