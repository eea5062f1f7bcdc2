package core

import (
	"slices"
	"sort"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// SeqKey names one dissemination sequence: the node that numbered the
// messages and its epoch (a random value per start, so numbers never
// repeat across restarts).
type SeqKey struct {
	Node  string
	Epoch uint64
}

// seqTrack is what a node holds of one sequence: every number up to
// contiguous, plus the numbers in above, a sorted set of disjoint spans,
// all above contiguous+1 (a span starting at contiguous+1 is merged into
// the prefix). Its size is the number of gaps, not of numbers, so a node
// far behind — a restarted one catching up while live traffic runs
// thousands of numbers ahead — costs a few spans. It also carries the
// pending grafts of that sequence (numbers announced by peers but not
// received).
type seqTrack struct {
	contiguous uint64
	above      []span    // disjoint, sorted, not adjacent to each other nor to contiguous
	max        uint64    // highest number received
	lastNew    time.Time // when a number was last added
	advanced   time.Time // when contiguous last grew by a received number
	// skipped are the newest ranges at or below contiguous that were
	// given up (never received), at most maxSkipped, oldest first.
	skipped []span
	// forgotten are numbers received and then forgotten (Node.Forget:
	// the application could not take them), at most maxForgotten, oldest
	// first: their next copy is new, although the track holds them.
	forgotten []uint64

	// Pending grafts, one per announcement that named a missing number,
	// in the order they were made (ascending upto).
	pend []*pendGraft
}

// maxForgotten bounds the forgotten numbers a track remembers: Forget is
// rare (a full delivery queue past its deadline, or closing).
const maxForgotten = 64

// received reports whether number s arrived here before (or was handled
// by a previous life): a copy of it is a duplicate whatever its id's
// state. Numbers given up without arriving, and forgotten ones, are not.
func (t *seqTrack) received(s uint64) bool {
	return s != 0 && t.has(s) && !t.skippedHas(s) && !slices.Contains(t.forgotten, s)
}

// forget records that s was forgotten (see forgotten).
func (t *seqTrack) forget(s uint64) {
	if s == 0 || slices.Contains(t.forgotten, s) {
		return
	}
	if len(t.forgotten) == maxForgotten {
		t.forgotten = slices.Delete(t.forgotten, 0, 1)
	}
	t.forgotten = append(t.forgotten, s)
}

// unforget removes s from forgotten: it arrived again.
func (t *seqTrack) unforget(s uint64) {
	if i := slices.Index(t.forgotten, s); i >= 0 {
		t.forgotten = slices.Delete(t.forgotten, i, i+1)
	}
}

// span is the numbers lo..hi, inclusive.
type span struct{ lo, hi uint64 }

// maxSkipped bounds the given-up ranges a track remembers.
const maxSkipped = 16

// noteSkipped records that lo..hi were given up.
func (t *seqTrack) noteSkipped(lo, hi uint64) {
	if lo > hi {
		return
	}
	if l := len(t.skipped); l > 0 && t.skipped[l-1].hi+1 >= lo {
		t.skipped[l-1].hi = max(t.skipped[l-1].hi, hi)
		return
	}
	if len(t.skipped) == maxSkipped {
		t.skipped = slices.Delete(t.skipped, 0, 1)
	}
	t.skipped = append(t.skipped, span{lo, hi})
}

// skippedHas reports whether s was given up (as far as remembered).
func (t *seqTrack) skippedHas(s uint64) bool {
	for _, sp := range t.skipped {
		if sp.lo <= s && s <= sp.hi {
			return true
		}
	}
	return false
}

// recover removes s from the given-up ranges: it arrived after all.
func (t *seqTrack) recover(s uint64) bool {
	for i, sp := range t.skipped {
		if sp.lo <= s && s <= sp.hi {
			switch {
			case sp.lo == sp.hi:
				t.skipped = slices.Delete(t.skipped, i, i+1)
			case s == sp.lo:
				t.skipped[i].lo++
			case s == sp.hi:
				t.skipped[i].hi--
			default:
				t.skipped[i].hi = s - 1
				t.skipped = slices.Insert(t.skipped, i+1, span{s + 1, sp.hi})
				if len(t.skipped) > maxSkipped {
					t.skipped = slices.Delete(t.skipped, 0, 1)
				}
			}
			return true
		}
	}
	return false
}

// pendGraft is an announcement of numbers up to upto by peers: at
// deadline the node asks peers[next] for those still missing.
type pendGraft struct {
	upto     uint64
	deadline time.Time
	peers    []string
	next     int
	tries    int
}

// newSeqTrack starts tracking a sequence. Every number from 1 is wanted:
// the first number a node hears of need not be the lowest one in flight
// to it, so no earlier number can be assumed received or unwanted. A node
// that joins late thus fetches what its peers still store; numbers no
// peer stores any more are given up (giveUpBelow).
func newSeqTrack(now time.Time) *seqTrack {
	return &seqTrack{lastNew: now}
}

// find returns the index of the first span with hi ≥ s.
func (t *seqTrack) find(s uint64) int {
	return sort.Search(len(t.above), func(i int) bool { return t.above[i].hi >= s })
}

func (t *seqTrack) has(s uint64) bool {
	if s <= t.contiguous {
		return true
	}
	i := t.find(s)
	return i < len(t.above) && t.above[i].lo <= s
}

// add records number s; it reports whether s was new.
func (t *seqTrack) add(s uint64, now time.Time) bool {
	if s == 0 {
		return false
	}
	if t.has(s) {
		return s <= t.contiguous && t.recover(s)
	}
	t.lastNew = now
	t.max = max(t.max, s)
	if s == t.contiguous+1 {
		t.contiguous = s
		t.advanced = now
		t.compact()
		return true
	}
	i := t.find(s) // the first span ending at or after s: s is below it (not in it)
	joinPrev := i > 0 && t.above[i-1].hi+1 == s
	joinNext := i < len(t.above) && t.above[i].lo == s+1
	switch {
	case joinPrev && joinNext:
		t.above[i-1].hi = t.above[i].hi
		t.above = slices.Delete(t.above, i, i+1)
	case joinPrev:
		t.above[i-1].hi = s
	case joinNext:
		t.above[i].lo = s
	default:
		t.above = slices.Insert(t.above, i, span{s, s})
	}
	return true
}

// compact merges a span that starts right after the prefix into it.
func (t *seqTrack) compact() {
	if len(t.above) > 0 && t.above[0].lo <= t.contiguous+1 {
		t.contiguous = max(t.contiguous, t.above[0].hi)
		t.above = t.above[1:]
		if len(t.above) == 0 {
			t.above = nil
		}
	}
}

// held is how many numbers above contiguous the track holds.
func (t *seqTrack) held() uint64 {
	var n uint64
	for _, sp := range t.above {
		n += sp.hi - sp.lo + 1
	}
	return n
}

// giveUpBelow treats every number below floor as held: no peer that could
// send them still stores them. It returns how many numbers were given up
// (the gaps below floor). Its work is proportional to the spans, not to
// the numbers: floor comes from the network.
func (t *seqTrack) giveUpBelow(floor uint64) uint64 {
	if floor == 0 || floor <= t.contiguous+1 {
		return 0
	}
	skipped := floor - 1 - t.contiguous
	var keep []span
	gap := t.contiguous + 1 // the start of the current gap
	for _, sp := range t.above {
		if sp.lo < floor {
			t.noteSkipped(gap, sp.lo-1)
			gap = sp.hi + 1
		}
		switch {
		case sp.hi < floor: // held, below the floor
			skipped -= sp.hi - sp.lo + 1
			continue
		case sp.lo < floor: // the floor falls inside it
			skipped -= floor - sp.lo
			sp.lo = floor
		}
		keep = append(keep, sp)
	}
	if gap < floor {
		t.noteSkipped(gap, floor-1)
	}
	t.above = keep
	t.contiguous = floor - 1
	t.max = max(t.max, t.contiguous)
	t.compact()
	return skipped
}

// gaps is the number of gaps below the numbers held above the prefix.
func (t *seqTrack) gaps() int { return len(t.above) }

// skipOldestGap gives up the lowest gap (the numbers between the prefix
// and the first span) and returns what it gave up, as a range, and how
// many numbers.
func (t *seqTrack) skipOldestGap() (first, last, skipped uint64) {
	if len(t.above) == 0 {
		return 0, 0, 0
	}
	first, last = t.contiguous+1, t.above[0].lo-1
	skipped = last - first + 1
	t.noteSkipped(first, last)
	t.contiguous = t.above[0].hi
	t.above = t.above[1:]
	t.compact()
	return first, last, skipped
}

// missing returns up to limit numbers in (contiguous, upto] not held, in
// ascending order, as ranges.
func (t *seqTrack) missing(k SeqKey, upto uint64, limit int) []*pb.SeqRange {
	var out []*pb.SeqRange
	n := uint64(0)
	lo := t.contiguous + 1
	emit := func(a, b uint64) bool { // the gap a..b
		if a > b {
			return true
		}
		b = min(b, upto)
		if a > b {
			return false
		}
		room := uint64(limit) - n
		if b-a+1 > room {
			b = a + room - 1
		}
		out = append(out, &pb.SeqRange{Node: k.Node, Epoch: k.Epoch, First: a, Last: b})
		n += b - a + 1
		return n < uint64(limit) && b < upto
	}
	for _, sp := range t.above {
		if lo > upto || !emit(lo, sp.lo-1) {
			return out
		}
		lo = sp.hi + 1
	}
	if lo <= upto {
		emit(lo, upto)
	}
	return out
}

// summary is the digest entry of the sequence, listing at most limit
// spans above contiguous.
func (t *seqTrack) summary(k SeqKey, limit int) *pb.SeqSummary {
	s := &pb.SeqSummary{Node: k.Node, Epoch: k.Epoch, Contiguous: t.contiguous}
	for _, sp := range t.skipped {
		s.Skipped = append(s.Skipped, &pb.Span{First: sp.lo, Last: sp.hi})
	}
	for _, sp := range t.above {
		if len(s.Held) == limit {
			s.Truncated = true
			break
		}
		s.Held = append(s.Held, &pb.Span{First: sp.lo, Last: sp.hi})
	}
	return s
}

// hasAll reports whether every number of lo..hi is held.
func (t *seqTrack) hasAll(lo, hi uint64) bool {
	lo = max(lo, t.contiguous+1)
	if lo > hi {
		return true
	}
	i := t.find(lo)
	return i < len(t.above) && t.above[i].lo <= lo && t.above[i].hi >= hi
}

// lacks reports whether the digest entry d names a number t does not hold.
func (t *seqTrack) lacks(d *pb.SeqSummary) bool {
	if d.GetContiguous() > t.contiguous {
		return true // contiguous+1 is never held (it would extend the prefix)
	}
	for _, sp := range d.GetHeld() {
		if !t.hasAll(sp.GetFirst(), sp.GetLast()) {
			return true
		}
	}
	return false
}

// normalizeSummary makes a digest entry from the network safe to use: the
// numbers of an older node's above become held spans, spans are sorted,
// merged and above contiguous, at most limit of them (truncated beyond).
// Its work is bounded by the entry's size, never by the numbers' values.
func normalizeSummary(d *pb.SeqSummary, limit int) {
	spans := make([]span, 0, len(d.GetHeld())+len(d.GetAbove()))
	for _, sp := range d.GetHeld() {
		if sp.GetFirst() <= sp.GetLast() {
			spans = append(spans, span{sp.GetFirst(), sp.GetLast()})
		}
	}
	for _, x := range d.GetAbove() {
		spans = append(spans, span{x, x})
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	var out []*pb.Span
	c := d.GetContiguous()
	for _, sp := range spans {
		if sp.hi <= c+1 {
			continue
		}
		sp.lo = max(sp.lo, c+2)
		if l := len(out); l > 0 && out[l-1].Last+1 >= sp.lo {
			out[l-1].Last = max(out[l-1].Last, sp.hi)
			continue
		}
		if len(out) == limit {
			d.Truncated = true
			break
		}
		out = append(out, &pb.Span{First: sp.lo, Last: sp.hi})
	}
	d.Held, d.Above = out, nil
}

// summaryHas reports whether digest entry d (normalized; nil: the peer
// does not know the sequence) holds number s, and whether s is within
// what d describes (above a truncated list nothing is known).
func summaryHas(d *pb.SeqSummary, s uint64) (has, known bool) {
	if d == nil {
		return false, true
	}
	if s <= d.GetContiguous() {
		for _, r := range d.GetSkipped() {
			if r.GetFirst() <= s && s <= r.GetLast() {
				return false, true // given up: not held
			}
		}
		return true, true
	}
	held := d.GetHeld()
	i := sort.Search(len(held), func(i int) bool { return held[i].GetLast() >= s })
	if i < len(held) && held[i].GetFirst() <= s {
		return true, true
	}
	if d.GetTruncated() && (len(held) == 0 || s > held[len(held)-1].GetLast()) {
		return false, false
	}
	return false, true
}
