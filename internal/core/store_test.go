package core

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSeqMsgsModel drives one sequence's store with random adds, deletes,
// holds and scans, in the patterns the network produces (in order, with
// gaps, late repairs below the window, numbers far from the rest), and
// checks every answer against a plain map.
func TestSeqMsgsModel(t *testing.T) {
	for seed := range uint64(20) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		sm := &seqMsgs{}
		model := map[uint64]*storedMsg{}
		next := uint64(1000)
		peak := 0
		pick := func() uint64 {
			switch r := rnd.IntN(100); {
			case r < 60: // in order, sometimes past a gap
				next += 1 + uint64(rnd.IntN(3)/2)*uint64(rnd.IntN(10))
				return next
			case r < 80: // a late repair, near or far below
				return next - uint64(rnd.IntN(300))
			case r < 90: // far from everything
				return rnd.Uint64N(math.MaxUint64)
			default: // a number already seen, maybe
				return next - uint64(rnd.IntN(20))
			}
		}
		for step := range 5000 {
			switch op := rnd.IntN(10); {
			case op < 5:
				x := pick()
				m := &storedMsg{seq: x}
				_, dup := model[x]
				if got := sm.add(m); got == dup {
					t.Fatalf("seed %d step %d: add(%d) = %v with the number stored: %v", seed, step, x, got, dup)
				}
				if !dup {
					model[x] = m
				}
			case op < 8 && len(model) > 0:
				// Delete the oldest or a random one (eviction is oldest
				// first, but by acceptance, not by number).
				keys := slices.Sorted(maps.Keys(model))
				x := keys[0]
				if rnd.IntN(2) == 0 {
					x = keys[rnd.IntN(len(keys))]
				}
				sm.del(&storedMsg{seq: x}) // not the stored one: no effect
				sm.del(model[x])
				delete(model, x)
			case op < 9:
				lo := next - uint64(rnd.IntN(400))
				hi := lo + uint64(rnd.IntN(400))
				bit := uint64(1) << rnd.IntN(64)
				sm.holdRange(bit, lo, hi)
				for x, m := range model {
					if x >= lo && x <= hi && m.holders&bit == 0 {
						t.Fatalf("seed %d step %d: holdRange(%d, %d) missed %d", seed, step, lo, hi, x)
					}
				}
			default:
				lo, limit := next-uint64(rnd.IntN(500)), rnd.IntN(50)
				var want []uint64
				for _, x := range slices.Sorted(maps.Keys(model)) {
					if x >= lo && len(want) < limit {
						want = append(want, x)
					}
				}
				sm.max = math.MaxUint64 // numbersFrom is cut by the bounds put keeps
				if got := sm.numbersFrom(lo, limit); !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: numbersFrom(%d, %d) = %v, want %v", seed, step, lo, limit, got, want)
				}
			}
			if sm.count() != len(model) {
				t.Fatalf("seed %d step %d: count %d, want %d", seed, step, sm.count(), len(model))
			}
			// Deletes inside the window leave it as long as it was: its
			// length is bounded by the most it ever held, never by the
			// numbers.
			peak = max(peak, sm.inWin)
			if l := len(sm.win); l > 2*peak+windowSlack {
				t.Fatalf("seed %d step %d: window of %d slots, and it never held more than %d messages", seed, step, l, peak)
			}
			if l := len(sm.win); l > 0 && (sm.win[0] == nil || sm.win[l-1] == nil) {
				t.Fatalf("seed %d step %d: window not trimmed", seed, step)
			}
		}
		for x, m := range model {
			if sm.get(x) != m {
				t.Fatalf("seed %d: get(%d) lost the message", seed, x)
			}
		}
	}
}

// TestSeqMsgsWindow checks the layout the store is for: a sequence stored
// in order lives in the window (no map), a number far from it goes to the
// map, and numbers from the network cannot make the window large.
func TestSeqMsgsWindow(t *testing.T) {
	sm := &seqMsgs{}
	for x := uint64(1); x <= 1000; x++ {
		if x%7 == 0 {
			continue // lost numbers leave gaps in the window
		}
		sm.add(&storedMsg{seq: x})
	}
	if len(sm.far) != 0 || sm.inWin != 858 || len(sm.win) != 1000 {
		t.Fatalf("in order: %d in window of %d slots, %d apart; want 858 in 1000, none apart", sm.inWin, len(sm.win), len(sm.far))
	}
	for _, x := range []uint64{1 << 40, math.MaxUint64, 1 << 20} {
		sm.add(&storedMsg{seq: x})
	}
	if len(sm.far) != 3 || len(sm.win) != 1000 {
		t.Fatalf("far numbers: %d apart, window %d slots; want 3 apart and the window unchanged", len(sm.far), len(sm.win))
	}
	// Evicting the oldest slides the window.
	for x := uint64(1); x <= 500; x++ {
		if m := sm.get(x); m != nil {
			sm.del(m)
		}
	}
	if sm.base != 501 || len(sm.win) != 500 {
		t.Fatalf("after evicting 1..500: window at %d, %d slots; want 501, 500", sm.base, len(sm.win))
	}
	// A late repair just below the window joins it.
	sm.add(&storedMsg{seq: 490})
	if sm.base != 490 || len(sm.far) != 3 {
		t.Fatalf("late repair: window at %d, %d apart; want 490 and 3", sm.base, len(sm.far))
	}
}

// BenchmarkStoreHold is the store's work per accepted message on a node
// with 8 stream neighbours: the message is stored, each neighbour is
// marked as holding it (an announcement, an ACK or a duplicate each), a
// range announcement covers the last 64, and the byte bound evicts the
// oldest.
func BenchmarkStoreHold(b *testing.B) {
	s := newMsgStore(1<<20, time.Hour)
	keys := []SeqKey{{Node: "a", Epoch: 1}, {Node: "b", Epoch: 1}, {Node: "c", Epoch: 1}}
	wire := make([]byte, 100)
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for i := range b.N {
		k := keys[i%len(keys)]
		seq := uint64(i/len(keys) + 1)
		s.put(&storedMsg{key: k, seq: seq, wire: wire, at: now}, 0xff)
		for bit := range 8 {
			s.hold(1<<bit, k, seq, seq)
		}
		s.hold(1, k, max(seq, 64)-63, seq)
		if s.get(k, seq) == nil {
			b.Fatal("stored message not found")
		}
	}
}
