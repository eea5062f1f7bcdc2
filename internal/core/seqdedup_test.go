package core

import (
	"testing"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// A copy that arrives once both its id and its sequence's tracker are
// forgotten (LongTTL without news) is a duplicate: the retired prefix
// holds its number (DESIGN §4). Before it, such a copy was delivered
// again, and the tracker made anew for it gave up the numbers below it as
// holes. The same holds for the node's own messages, and announcements of
// those numbers are not grafted.
func TestLateCopyAfterLongTTL(t *testing.T) {
	n := streamNode(t, "x", "a", "b")
	long := n.cfg.LongTTL
	now := time.Unix(1000, 0)
	for s := uint64(1); s <= 3; s++ {
		receive(t, n, now, seqMsg("s", s, "a", 1), ViaEager)
	}
	mine, err := n.Receive(now, gossipMsg("mine", "", "", 0)) // published here
	if err != nil || !mine.Fresh {
		t.Fatalf("publish: fresh=%v err=%v", mine.Fresh, err)
	}
	src := SeqKey{Node: "s", Epoch: 7}
	own := SeqKey{Node: "x", Epoch: n.Epoch()}

	later := now.Add(long + time.Second)
	n.Tick(later)
	for _, h := range []string{"s-1", "s-2", "s-3", "mine"} {
		if n.Storage().Seen(later, h) {
			t.Fatalf("%s still remembered after LongTTL: the test does not reach a forgotten id", h)
		}
	}
	if n.seqs[src] != nil || n.seqs[own] != nil {
		t.Fatal("trackers still held after LongTTL without news: the test does not reach a forgotten sequence")
	}

	// Late copies: of a neighbour's source, and of this node's own message.
	if res := receive(t, n, later, seqMsg("s", 2, "b", 2), ViaEager); res.Fresh || !res.Duplicate {
		t.Fatalf("late copy of s-2: Fresh=%v Duplicate=%v, want a duplicate", res.Fresh, res.Duplicate)
	}
	back := mine.Forward
	back.FromHash = "a"
	if res := receive(t, n, later, back, ViaEager); res.Fresh || !res.Duplicate {
		t.Fatalf("late copy of this node's own message: Fresh=%v Duplicate=%v, want a duplicate", res.Fresh, res.Duplicate)
	}
	// Announcements of retired numbers ask for nothing; a new number is
	// new, and leaves no hole below it.
	if outs := n.HandleIHave(later, "b", []*pb.SeqRange{{Node: "s", Epoch: 7, First: 1, Last: 3, Hops: 1}}); len(outs) != 0 {
		t.Fatalf("IHAVE of retired numbers: %+v, want nothing", outs)
	}
	if outs := n.Grafts(later.Add(time.Hour)); len(outs) != 0 {
		t.Fatalf("grafts for retired numbers: %+v", outs)
	}
	if res := receive(t, n, later, seqMsg("s", 4, "a", 1), ViaEager); !res.Fresh {
		t.Fatal("s-4, never seen, is not fresh")
	}
	if c := n.Counters(); c.Missing != 0 || c.HolesSkipped != 0 || c.Delivered != 5 {
		t.Fatalf("Missing %d HolesSkipped %d Delivered %d, want 0, 0 and 5", c.Missing, c.HolesSkipped, c.Delivered)
	}

	// The prefix is kept retiredKeep LongTTLs after the sequence is
	// forgotten (again: now holding 1..4), then dropped.
	quiet := later.Add(long)
	n.Tick(quiet)
	if r, ok := n.retired[src]; !ok || r.upto != 4 {
		t.Fatalf("retired[s] = %+v, %v after s went quiet again, want 1..4", r, ok)
	}
	n.Tick(quiet.Add(time.Duration(retiredKeep)*long - time.Second))
	if _, ok := n.retired[src]; !ok {
		t.Fatal("retired prefix dropped before retiredKeep × LongTTL")
	}
	n.Tick(quiet.Add(time.Duration(retiredKeep) * long))
	if _, ok := n.retired[src]; ok {
		t.Fatal("retired prefix kept past retiredKeep × LongTTL")
	}
}

// A copy whose id was evicted from the id cache (past MaxSeen: at 20,000
// msg/s the default 262,144 ids last 13 s) is a duplicate while its
// sequence's tracker holds the number. Before, it was delivered again.
func TestDuplicateAfterIDEvicted(t *testing.T) {
	cfg := validConfig(t, func(c *Config) { c.MaxSeen, c.MaxActive = 4, 4 })
	n := NewNode("x", cfg, NewStorage(cfg), nil, 1)
	for _, id := range []string{"a", "b"} {
		if err := n.AddNeighbor(id, addrOf(id)); err != nil {
			t.Fatal(err)
		}
		n.SetPeerKind(id, KindStream)
	}
	now := time.Unix(1000, 0)
	for s := uint64(1); s <= 20; s++ {
		receive(t, n, now, seqMsg("s", s, "a", 1), ViaEager)
	}
	if n.Storage().Seen(now, "s-2") {
		t.Fatal("s-2 still remembered: the test does not reach an evicted id")
	}
	if res := receive(t, n, now, seqMsg("s", 2, "b", 3), ViaEager); res.Fresh || !res.Duplicate {
		t.Fatalf("copy of s-2 after its id was evicted: Fresh=%v Duplicate=%v, want a duplicate", res.Fresh, res.Duplicate)
	}
	if c := n.Counters(); c.Delivered != 20 {
		t.Fatalf("Delivered = %d, want 20", c.Delivered)
	}
}

// Forget takes back the number as well as the id: the next copy of a
// forgotten numbered message is new (the sender's retry delivers it),
// once; and a number given up as a hole, then received, is delivered.
func TestForgetNumberedAndGivenUp(t *testing.T) {
	n := streamNode(t, "x", "a")
	now := time.Unix(1000, 0)
	res := receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager)
	n.Forget(res.Forward)
	if res := receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager); !res.Fresh {
		t.Fatal("copy of a forgotten numbered message is not fresh")
	}
	if res := receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager); res.Fresh {
		t.Fatal("second copy after Forget is fresh again")
	}
	// Number 3 arrives, 2 is given up (no neighbour stores it), then a
	// copy of 2 turns up after all: it is delivered, once.
	receive(t, n, now, seqMsg("s", 3, "a", 1), ViaEager)
	tr := n.seqs[SeqKey{Node: "s", Epoch: 7}]
	if got := tr.giveUpBelow(3); got != 1 {
		t.Fatalf("giveUpBelow(3) gave up %d numbers, want 1", got)
	}
	if !tr.has(2) {
		t.Fatal("a given-up number is not held")
	}
	n.Storage().Forget("s-2") // never seen anyway
	if res := receive(t, n, now, seqMsg("s", 2, "a", 1), ViaEager); !res.Fresh {
		t.Fatal("a given-up number that arrives is not fresh")
	}
	if res := receive(t, n, now, seqMsg("s", 2, "a", 1), ViaEager); res.Fresh {
		t.Fatal("a given-up number delivered twice")
	}
}

// A message that claims a number the store holds under another id is not
// a copy of it: sequence fields are not signed, so a forged (or buggy)
// claim to the number of a message not yet arrived must not suppress the
// real one when it does.
func TestNumberClaimedByAnotherID(t *testing.T) {
	n := streamNode(t, "x", "a", "b")
	now := time.Unix(1000, 0)
	receive(t, n, now, seqMsg("s", 1, "a", 1), ViaEager)
	forged := seqMsg("s", 2, "b", 1)
	forged.Hash = "forged"
	if res := receive(t, n, now, forged, ViaEager); !res.Fresh {
		t.Fatal("the forged claim, a new id, is not fresh")
	}
	if res := receive(t, n, now, seqMsg("s", 2, "a", 1), ViaEager); !res.Fresh {
		t.Fatal("the real message of number 2 was suppressed by another id's claim to its number")
	}
}
