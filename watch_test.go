package gossip

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestWatchMembership: a watcher on node 0 of a 3-node cluster sees node
// 2 suspected, then declared dead, and removed from node 0's neighbours;
// a watcher closed with the node has its channel closed.
func TestWatchMembership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDCluster(t, 3, Config{}, DefaultLANMembershipConfig(), 21)
		defer c.close()
		w, err := c.node(0).Watch(0)
		if err != nil {
			t.Fatal(err)
		}
		wasNeighbor := c.node(0).Neighbors()[did(2)] != ""
		c.crash(2)
		var kinds []string
		suspect, dead, removed := false, false, !wasNeighbor
		lan := DefaultLANMembershipConfig()
		timeout := time.After(lan.DetectionBound(3) + 5*time.Second)
		for !(suspect && dead && removed) {
			select {
			case e := <-w.C():
				switch {
				case e.Kind == WatchMember && e.Member.Member.ID == did(2) && e.Member.Kind == MemberSuspected:
					suspect = true
				case e.Kind == WatchMember && e.Member.Member.ID == did(2) && e.Member.Kind == MemberDied:
					if !suspect {
						t.Error("dead before suspect")
					}
					dead = e.Member.Member.State == MemberDead
				case e.Kind == WatchNeighborRemoved && e.Peer == did(2):
					removed = true
				}
				kinds = append(kinds, e.Kind.String()+":"+e.Member.Kind.String())
			case <-timeout:
				t.Fatalf("suspect %v dead %v removed %v; events %v", suspect, dead, removed, kinds)
			}
		}
		if got := c.node(0).Stats().Watchers; got != 1 {
			t.Errorf("Watchers = %d", got)
		}
		w.Close()
		w.Close() // idempotent
		if got := c.node(0).Stats().Watchers; got != 0 {
			t.Errorf("Watchers = %d after Close", got)
		}
		w2, _ := c.node(1).Watch(4)
		c.node(1).Close()
		for range w2.C() {
		}
		if _, err := c.node(1).Watch(0); err == nil {
			t.Error("Watch on a closed node succeeded")
		}
	})
}
