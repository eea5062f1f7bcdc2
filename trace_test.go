package gossip

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

// TestTraceTree: a message traced on one node of a 20-node cluster (memnet,
// virtual time) gets 20 receipts at its origin, one per node, whose
// parent links (from) form a tree rooted at the origin, with hops one more
// than the parent's; an untraced message gets none.
func TestTraceTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 20
		c := newDCluster(t, n, Config{}, DefaultLANMembershipConfig(), 31)
		defer c.close()
		origin := c.node(3)
		id, _, err := origin.Publish(t.Context(), "traced-1", []byte("x"), Traced())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := origin.Publish(t.Context(), "plain-1", []byte("y")); err != nil {
			t.Fatal(err)
		}
		var tr Trace
		testutil.WaitFor(t, time.Minute, "20 receipts", func() error {
			var ok bool
			if tr, ok = origin.Trace(id); !ok {
				return fmt.Errorf("no trace of %s", id)
			}
			if len(tr.Receipts) < n {
				return fmt.Errorf("%d receipts", len(tr.Receipts))
			}
			return nil
		})
		if len(tr.Receipts) != n {
			t.Fatalf("%d receipts, want %d", len(tr.Receipts), n)
		}
		byNode := map[string]Receipt{}
		for _, r := range tr.Receipts {
			if _, dup := byNode[r.Node]; dup {
				t.Errorf("two receipts from %s", r.Node)
			}
			byNode[r.Node] = r
		}
		if r := tr.Receipts[0]; r.Node != origin.Hash || r.From != "" || r.Hops != 0 {
			t.Errorf("first receipt %+v, want the origin's own", r)
		}
		// Every node reaches the origin by following from, in hops steps.
		for _, r := range tr.Receipts {
			cur, steps := r, 0
			for cur.Node != origin.Hash {
				parent, ok := byNode[cur.From]
				if !ok {
					t.Fatalf("%s's parent %q has no receipt", cur.Node, cur.From)
				}
				if parent.Hops+1 != cur.Hops {
					t.Errorf("%s: hops %d, parent %s hops %d", cur.Node, cur.Hops, parent.Node, parent.Hops)
				}
				cur, steps = parent, steps+1
				if steps > n {
					t.Fatalf("cycle through %s", r.Node)
				}
			}
			if steps != int(r.Hops) {
				t.Errorf("%s: %d steps to the origin, hops %d", r.Node, steps, r.Hops)
			}
		}
		if _, ok := origin.Trace("plain-1"); ok {
			t.Error("an untraced message has a trace")
		}
		if got := origin.Traces(0); len(got) != 1 || got[0].ID != id {
			t.Errorf("Traces = %v", got)
		}
		var sent uint64
		for i := range n {
			sent += c.node(i).Stats().ReceiptsSent
		}
		if sent != n-1 {
			t.Errorf("%d receipts sent, want %d", sent, n-1)
		}
	})
}

// TestTraceSample: with TraceSample 1 every publish is traced; with 0 none
// is (unless Traced()); an invalid fraction is refused.
func TestTraceSample(t *testing.T) {
	all, err := New("s1", "", nil, nil, nil, nil, WithConfig(Config{TraceSample: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	none, err := New("s0", "", nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	for _, n := range []*GossipNode{all, none} {
		if _, _, err := n.Publish(t.Context(), "m", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if tr, ok := all.Trace("m"); !ok || len(tr.Receipts) != 1 || tr.Receipts[0].Node != "s1" {
		t.Errorf("TraceSample 1: trace %+v, %v", tr, ok)
	}
	if _, ok := none.Trace("m"); ok {
		t.Error("TraceSample 0 traced a publish")
	}
	if _, err := New("bad", "", nil, nil, nil, nil, WithConfig(Config{TraceSample: 1.5})); err == nil {
		t.Error("TraceSample 1.5 accepted")
	}
}
