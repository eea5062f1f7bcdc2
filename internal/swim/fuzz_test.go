package swim

import (
	"fmt"
	"testing"
	"time"
)

// FuzzStep feeds a node arbitrary sequences of messages and ticks, as a
// hostile or broken peer could, and checks its invariants: no panic, the
// live count matches the members, every suspect has a running suspicion,
// every dead or left member is on the reap list, and Next is never in the
// past after a Tick.
func FuzzStep(f *testing.F) {
	f.Add([]byte{1, 0, 1, 2, 3, 0, 2, 1, 4, 5, 3, 3, 0, 7, 9})
	f.Add([]byte{6, 1, 1, 0, 0, 0, 2, 2, 2, 2, 3, 1, 4, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultLANConfig()
		n, err := New(t0, "a", "a:1", cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for len(data) >= 5 {
			kind, id, st, inc, adv := data[0], data[1]%6, data[2], data[3]%4, data[4]
			data = data[5:]
			now = now.Add(time.Duration(adv) * 50 * time.Millisecond)
			u := Update{ID: string(rune('a' + id)), Addr: fmt.Sprint(rune('a'+id), ":", inc%2), State: State(st % 6), Incarnation: uint64(inc), From: string(rune('a' + st%6))}
			m := Message{Kind: Kind(kind % 9), From: string(rune('a' + st%6)), Seq: uint64(inc), Target: u.ID, TargetAddr: u.Addr, Updates: []Update{u}}
			n.Step(now, m)
			n.Tick(now)
			if next := n.Next(); next.Before(now) {
				t.Fatalf("Next %v before now %v", next, now)
			}
			n.Ready()
			live := 0
			for _, mb := range n.members {
				if !mb.State.gone() {
					live++
				}
				if (mb.State == Suspect) != (mb.susp != nil) {
					t.Fatalf("%s is %v with suspicion %v", mb.ID, mb.State, mb.susp)
				}
			}
			if live != n.live || len(n.members) != len(n.list)+1 {
				t.Fatalf("live %d, counted %d; %d members, list %d", n.live, live, len(n.members), len(n.list))
			}
			for _, mb := range n.gone {
				if !mb.State.gone() {
					t.Fatalf("%s on the reap list while %v", mb.ID, mb.State)
				}
			}
		}
	})
}
