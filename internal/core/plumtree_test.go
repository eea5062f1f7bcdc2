package core

import (
	"fmt"
	"testing"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// streamNode returns a node whose neighbours all speak Gossip.Stream.
func streamNode(t *testing.T, self string, neighbors ...string) *Node {
	t.Helper()
	n := newTestNode(t, self, nil, 1, neighbors...)
	for _, id := range neighbors {
		n.SetPeerKind(id, KindStream)
	}
	return n
}

// seqMsg is message number seq of source src, as forwarded by from after
// hops hops.
func seqMsg(src string, seq uint64, from string, hops uint32) *pb.GossipMessage {
	m := gossipMsg(fmt.Sprintf("%s-%d", src, seq), from, src, hops)
	m.SeqNode, m.SeqEpoch, m.Seq = src, 7, seq
	return m
}

func receive(t *testing.T, n *Node, now time.Time, m *pb.GossipMessage, via Via) Result {
	t.Helper()
	res, err := n.ReceiveVia(now, m, via)
	if err != nil {
		t.Fatalf("ReceiveVia: %v", err)
	}
	return res
}

func outTo(outs []Out, peer string) []Frame {
	var fs []Frame
	for _, o := range outs {
		if o.Peer == peer {
			fs = append(fs, o.Frame)
		}
	}
	return fs
}

// The parent keeps its place when another path wins one race, the other
// path's duplicates are pruned, the parent's are not, and copies never go
// back up to the parent.
func TestParentIsSticky(t *testing.T) {
	n := streamNode(t, "x", "a", "b", "c")
	now := time.Unix(1000, 0)
	receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager) // a becomes the parent
	if res := receive(t, n, now, seqMsg("s", 1, "b", 1), ViaEager); res.Prune != "s" {
		t.Fatalf("b's duplicate: Prune = %q, want s", res.Prune)
	}
	// b wins the race for message 2, once.
	res := receive(t, n, now.Add(time.Millisecond), seqMsg("s", 2, "b", 1), ViaEager)
	if got := outTo(res.Out, "a"); len(got) != 1 || got[0].Kind != FrameIHave {
		t.Fatalf("frames to the parent a = %+v, want one IHAVE (never the message)", got)
	}
	if got := outTo(res.Out, "c"); len(got) != 1 || got[0].Kind != FrameMessage {
		t.Fatalf("frames to c = %+v, want the message", got)
	}
	if res := receive(t, n, now.Add(time.Millisecond), seqMsg("s", 2, "a", 1), ViaEager); res.Prune != "" {
		t.Fatalf("the parent's late copy was pruned")
	}
	if p := n.parents["s"]; p.peer != "a" {
		t.Fatalf("parent = %q after one lost race, want a", p.peer)
	}
}

// A parent that loses parentSwitch races in a row to another eager path is
// replaced by it, and pruned.
func TestParentSwitchesToFasterPath(t *testing.T) {
	n := streamNode(t, "x", "a", "b")
	now := time.Unix(1000, 0)
	receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager)
	for seq := uint64(2); seq < 2+parentSwitch; seq++ {
		now = now.Add(time.Millisecond)
		receive(t, n, now, seqMsg("s", seq, "b", 1), ViaEager)
		res := receive(t, n, now, seqMsg("s", seq, "a", 1), ViaEager)
		last := seq == 1+parentSwitch
		if (res.Prune != "") != last {
			t.Fatalf("race %d: Prune = %q, want a prune only at race %d", seq-1, res.Prune, parentSwitch)
		}
	}
	if p := n.parents["s"]; p.peer != "b" {
		t.Fatalf("parent = %q, want b", p.peer)
	}
	if c := n.Counters().ParentSwitches; c != 1 {
		t.Fatalf("ParentSwitches = %d, want 1", c)
	}
}

// A stale parent (no first copy for a graft timeout) gives way to the next
// first copy's sender at once.
func TestStaleParentReplaced(t *testing.T) {
	n := streamNode(t, "x", "a", "b")
	now := time.Unix(1000, 0)
	receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager)
	receive(t, n, now.Add(n.graftTimeout()), seqMsg("s", 2, "b", 1), ViaEager)
	if p := n.parents["s"]; p.peer != "b" {
		t.Fatalf("parent = %q, want b", p.peer)
	}
}

// An announcement from a peer two hops closer to the source makes it the
// parent: a GRAFT goes to it, the old parent is not pruned until its
// copies turn redundant, and not again within a graft timeout.
func TestOptimiseShortensTree(t *testing.T) {
	n := streamNode(t, "x", "a", "b", "c")
	now := time.Unix(1000, 0)
	receive(t, n, now, seqMsg("s", 1, "a", 5), ViaEager) // arrived after 5 hops
	now = now.Add(n.graftTimeout())
	// c is one hop closer: not enough.
	if outs := n.HandleIHave(now, "c", []*pb.SeqRange{{Node: "s", Epoch: 7, First: 1, Last: 1, Hops: 4}}); len(outs) != 0 {
		t.Fatalf("IHAVE one hop shorter: %+v, want nothing", outs)
	}
	// b is three hops closer.
	outs := n.HandleIHave(now, "b", []*pb.SeqRange{{Node: "s", Epoch: 7, First: 1, Last: 1, Hops: 2}})
	if len(outs) != 1 || outs[0].Peer != "b" || outs[0].Frame.Kind != FrameGraft || outs[0].Frame.Range.GetFirst() != 1 {
		t.Fatalf("IHAVE three hops shorter: %+v, want one GRAFT of 1 to b", outs)
	}
	if p := n.parents["s"]; p.peer != "b" {
		t.Fatalf("parent = %q, want b", p.peer)
	}
	if outs := n.HandleIHave(now, "c", []*pb.SeqRange{{Node: "s", Epoch: 7, First: 1, Last: 1, Hops: 1}}); len(outs) != 0 {
		t.Fatalf("second swap within a graft timeout: %+v", outs)
	}
	// The old parent's next copy, beaten by b's, is pruned.
	receive(t, n, now, seqMsg("s", 2, "b", 3), ViaEager)
	if res := receive(t, n, now, seqMsg("s", 2, "a", 5), ViaEager); res.Prune != "s" {
		t.Fatalf("old parent's duplicate: Prune = %q, want s", res.Prune)
	}
	if c := n.Counters().TreeSwaps; c != 1 {
		t.Fatalf("TreeSwaps = %d, want 1", c)
	}
}

// A graft waits while the sequence's contiguous prefix still grows (the
// tree path is slow, not broken), and goes once it stalls.
func TestGraftWaitsForAdvancingSequence(t *testing.T) {
	n := streamNode(t, "x", "a", "b")
	gt := n.graftTimeout()
	now := time.Unix(1000, 0)
	receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager)
	n.HandleIHave(now, "b", []*pb.SeqRange{{Node: "s", Epoch: 7, First: 2, Last: 5}})
	// Numbers keep arriving in order from the parent.
	for seq := uint64(2); seq <= 3; seq++ {
		now = now.Add(gt / 2)
		receive(t, n, now, seqMsg("s", seq, "a", 1), ViaEager)
		if g := n.Grafts(now.Add(gt / 4)); len(g) != 0 {
			t.Fatalf("graft while the sequence advances: %+v", g)
		}
	}
	if d := n.Counters().GraftsDelayed; d == 0 {
		t.Fatalf("GraftsDelayed = 0")
	}
	// Then nothing more: the graft goes a graft timeout after the last.
	if g := n.Grafts(now.Add(gt - time.Millisecond)); len(g) != 0 {
		t.Fatalf("graft before the stall: %+v", g)
	}
	g := n.Grafts(now.Add(gt))
	if len(g) != 1 || g[0].Peer != "b" || g[0].Frame.Range.GetFirst() != 4 || g[0].Frame.Range.GetLast() != 5 {
		t.Fatalf("grafts after the stall = %+v, want 4..5 from b", g)
	}
}

// A node that has no parent for a source (no eager copy of its messages
// has reached it: the young tree may miss it) grafts an announced number
// a tenth of a graft timeout after the announcement; once it has a
// parent, announcements wait the whole graft timeout.
func TestYoungTreeGraftsSoon(t *testing.T) {
	n := streamNode(t, "x", "a", "b")
	gt := n.graftTimeout()
	now := time.Unix(1000, 0)
	n.HandleIHave(now, "b", []*pb.SeqRange{{Node: "s", Epoch: 7, First: 1, Last: 1}})
	if got := n.GraftDue().Sub(now); got != gt/10 {
		t.Fatalf("graft due after %v, want %v (a tenth of the graft timeout)", got, gt/10)
	}
	if g := n.Grafts(now.Add(gt/10 - time.Millisecond)); len(g) != 0 {
		t.Fatalf("graft before the young-tree wait: %+v", g)
	}
	g := n.Grafts(now.Add(gt / 10))
	if len(g) != 1 || g[0].Peer != "b" || g[0].Frame.Kind != FrameGraft || g[0].Frame.Range.GetFirst() != 1 {
		t.Fatalf("grafts = %+v, want number 1 from b", g)
	}
	if c := n.Counters().GraftsYoung; c != 1 {
		t.Fatalf("GraftsYoung = %d, want 1", c)
	}
	// The answer makes b the parent: the tree reaches x now.
	now = now.Add(gt / 5)
	receive(t, n, now, seqMsg("s", 1, "b", 2), ViaRepair)
	if p := n.Parent("s"); p != "b" {
		t.Fatalf("parent %q after the repair, want b", p)
	}
	n.HandleIHave(now, "a", []*pb.SeqRange{{Node: "s", Epoch: 7, First: 2, Last: 2}})
	pend := n.seqs[SeqKey{Node: "s", Epoch: 7}].pend
	if got := pend[len(pend)-1].deadline.Sub(now); got != gt {
		t.Fatalf("number 2's graft due after %v with a parent, want the graft timeout %v", got, gt)
	}
	if c := n.Counters().GraftsYoung; c != 1 {
		t.Fatalf("GraftsYoung = %d after x had a parent, want still 1", c)
	}
}

// A source's first announcement on a link is urgent (the peer may have no
// other way to learn of the source); later ones are not.
func TestFirstAnnouncementUrgent(t *testing.T) {
	n := streamNode(t, "x", "a", "b", "c")
	now := time.Unix(1000, 0)
	n.HandlePrune("c", []string{"other"}) // c's snapshot for new sources: lazy
	res := receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager)
	if fs := outTo(res.Out, "b"); len(fs) != 1 || fs[0].Kind != FrameMessage {
		t.Fatalf("to b: %+v, want the message (eager)", fs)
	}
	fs := outTo(res.Out, "c")
	if len(fs) != 1 || fs[0].Kind != FrameIHave || !fs[0].Urgent {
		t.Fatalf("to c: %+v, want an urgent announcement", fs)
	}
	res = receive(t, n, now.Add(time.Millisecond), seqMsg("s", 2, "a", 1), ViaEager)
	if fs := outTo(res.Out, "c"); len(fs) != 1 || fs[0].Kind != FrameIHave || fs[0].Urgent {
		t.Fatalf("second message to c: %+v, want a lazy (not urgent) announcement", fs)
	}
}
