package core

import (
	"fmt"
	"math/rand/v2"
	"testing"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// TestSeqTrackModel drives a track with random numbers and checks it
// against a plain set: has, missing, summary and the span invariants.
func TestSeqTrackModel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	k := SeqKey{Node: "s", Epoch: 1}
	for run := range 200 {
		tr := newSeqTrack(t0)
		model := map[uint64]bool{}
		top := uint64(1 + rnd.IntN(300))
		for range rnd.IntN(400) {
			x := 1 + rnd.Uint64N(top)
			if tr.add(x, t0) == model[x] {
				t.Fatalf("run %d: add(%d) new=%v but the model has it=%v", run, x, !model[x], model[x])
			}
			model[x] = true
		}
		var c uint64
		for model[c+1] {
			c++
		}
		if tr.contiguous != c {
			t.Fatalf("run %d: contiguous %d, want %d", run, tr.contiguous, c)
		}
		for i, sp := range tr.above {
			if sp.lo > sp.hi || sp.lo <= c+1 || i > 0 && tr.above[i-1].hi+1 >= sp.lo {
				t.Fatalf("run %d: spans break their invariant: %v (contiguous %d)", run, tr.above, c)
			}
		}
		var want []uint64
		for x := uint64(1); x <= top+5; x++ {
			if tr.has(x) != model[x] {
				t.Fatalf("run %d: has(%d) = %v", run, x, !model[x])
			}
			if !model[x] && x <= top {
				want = append(want, x)
			}
		}
		var got []uint64
		for _, r := range tr.missing(k, top, 1<<20) {
			for x := r.First; x <= r.Last; x++ {
				got = append(got, x)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("run %d: missing %v, want %v", run, got, want)
		}
		if limited := tr.missing(k, top, 3); len(want) >= 3 && countRanges(limited) != 3 {
			t.Fatalf("run %d: missing with limit 3 gave %d numbers", run, countRanges(limited))
		}
		// The summary, normalized as a receiver does, holds exactly what
		// the track holds.
		d := tr.summary(k, 1<<20)
		normalizeSummary(d, 1<<20)
		for x := uint64(1); x <= top+5; x++ {
			if has, _ := summaryHas(d, x); has != model[x] {
				t.Fatalf("run %d: summary has(%d) = %v", run, x, has)
			}
		}
		if tr.lacks(d) {
			t.Fatalf("run %d: a track lacks its own summary", run)
		}
	}
}

func countRanges(rs []*pb.SeqRange) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Last - r.First + 1
	}
	return n
}

// A node far behind on a busy sequence costs a few spans, not one entry
// per number: live traffic 100,000 numbers ahead of a gap is one span.
func TestSeqTrackFarBehind(t *testing.T) {
	tr := newSeqTrack(t0)
	for x := uint64(5000); x <= 105000; x++ {
		tr.add(x, t0)
	}
	if tr.gaps() != 1 || tr.held() != 100001 {
		t.Fatalf("gaps %d held %d", tr.gaps(), tr.held())
	}
	d := tr.summary(SeqKey{Node: "s"}, 256)
	if len(d.Held) != 1 || d.Truncated {
		t.Fatalf("summary %v", d)
	}
}

// giveUpBelow and skipOldestGap record what they gave up, the summary
// says so, and a late arrival recovers it.
func TestSeqTrackGiveUp(t *testing.T) {
	tr := newSeqTrack(t0)
	for _, x := range []uint64{1, 2, 5, 6, 9, 20} {
		tr.add(x, t0)
	}
	if n := tr.giveUpBelow(9); n != 4 { // 3, 4, 7, 8
		t.Fatalf("gave up %d, want 4", n)
	}
	if tr.contiguous != 9 || fmt.Sprint(tr.skipped) != "[{3 4} {7 8}]" {
		t.Fatalf("contiguous %d skipped %v", tr.contiguous, tr.skipped)
	}
	first, last, n := tr.skipOldestGap()
	if first != 10 || last != 19 || n != 10 || tr.contiguous != 20 {
		t.Fatalf("skipOldestGap = %d..%d (%d), contiguous %d", first, last, n, tr.contiguous)
	}
	d := tr.summary(SeqKey{Node: "s"}, 256)
	for x, want := range map[uint64]bool{2: true, 3: false, 5: true, 8: false, 12: false, 20: true} {
		if has, _ := summaryHas(d, x); has != want {
			t.Errorf("summary has(%d) = %v", x, has)
		}
	}
	if !tr.add(7, t0) || tr.skippedHas(7) || !tr.skippedHas(8) {
		t.Errorf("a late 7 was not recovered: skipped %v", tr.skipped)
	}
	if tr.add(7, t0) {
		t.Error("7 added twice")
	}
}

// normalizeSummary makes a hostile entry safe: unsorted, overlapping and
// huge spans, and an older node's numbers, within the limit.
func TestNormalizeSummary(t *testing.T) {
	d := &pb.SeqSummary{Contiguous: 10, Above: []uint64{40, 12, 13}, Held: []*pb.Span{
		{First: 30, Last: 35}, {First: 1, Last: 5}, {First: 33, Last: 1 << 62}, {First: 9, Last: 7}}}
	normalizeSummary(d, 2)
	var got []span
	for _, sp := range d.Held {
		got = append(got, span{sp.First, sp.Last})
	}
	if fmt.Sprint(got) != "[{12 13} {30 4611686018427387904}]" || d.Truncated || d.Above != nil {
		t.Fatalf("normalized %v truncated %v", got, d.Truncated)
	}
	d = &pb.SeqSummary{Held: []*pb.Span{{First: 5, Last: 5}, {First: 7, Last: 7}}}
	if normalizeSummary(d, 1); len(d.Held) != 1 || !d.Truncated {
		t.Fatalf("over the limit: %v truncated %v", d.Held, d.Truncated)
	}
}
