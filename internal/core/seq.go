package core

import (
	"slices"
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
// contiguous, plus the numbers in above. It also carries the pending graft
// of that sequence (numbers announced by peers but not received).
type seqTrack struct {
	contiguous uint64
	above      map[uint64]struct{} // numbers > contiguous+1 received; nil when empty
	max        uint64              // highest number received
	lastNew    time.Time           // when a number was last added
	advanced   time.Time           // when contiguous last grew by a received number

	// Pending grafts, one per announcement that named a missing number,
	// in the order they were made (ascending upto).
	pend []*pendGraft
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
// peer stores any more are given up when a digest shows them below the
// peer's floor (giveUpBelow).
func newSeqTrack(now time.Time) *seqTrack {
	return &seqTrack{lastNew: now}
}

// giveUpBelow treats every number below floor as held: the peer that sent
// a digest with this floor can no longer send them. It returns how many
// numbers were given up.
func (t *seqTrack) giveUpBelow(floor uint64) uint64 {
	if floor == 0 || floor <= t.contiguous+1 {
		return 0
	}
	// Work proportional to what is held, not to the gap: floor comes from
	// the network.
	skipped := floor - 1 - t.contiguous
	for s := range t.above {
		if s < floor {
			delete(t.above, s)
			skipped--
		}
	}
	t.contiguous = floor - 1
	t.max = max(t.max, t.contiguous)
	t.compact()
	return skipped
}

// compact moves numbers from above into the contiguous prefix.
func (t *seqTrack) compact() {
	for len(t.above) > 0 {
		if _, ok := t.above[t.contiguous+1]; !ok {
			break
		}
		delete(t.above, t.contiguous+1)
		t.contiguous++
	}
	if len(t.above) == 0 {
		t.above = nil
	}
}

func (t *seqTrack) has(s uint64) bool {
	if s <= t.contiguous {
		return true
	}
	_, ok := t.above[s]
	return ok
}

// add records number s; it reports whether s was new.
func (t *seqTrack) add(s uint64, now time.Time) bool {
	if t.has(s) {
		return false
	}
	t.lastNew = now
	t.max = max(t.max, s)
	if s != t.contiguous+1 {
		if t.above == nil {
			t.above = make(map[uint64]struct{})
		}
		t.above[s] = struct{}{}
		return true
	}
	t.contiguous = s
	t.advanced = now
	t.compact()
	return true
}

// skipHoles gives up the oldest holes when more than limit numbers wait
// above them (a hole nobody can fill, e.g. a message its numbering node
// accepted and crashed before sending, must not grow state forever). It
// returns the number of holes given up.
func (t *seqTrack) skipHoles(limit int) uint64 {
	if len(t.above) <= limit {
		return 0
	}
	lo := t.max
	for s := range t.above {
		lo = min(lo, s)
	}
	skipped := lo - 1 - t.contiguous
	t.contiguous = lo - 1
	t.compact()
	return skipped
}

// missing returns up to limit numbers in (contiguous, upto] not held, in
// ascending order, as ranges.
func (t *seqTrack) missing(k SeqKey, upto uint64, limit int) []*pb.SeqRange {
	var out []*pb.SeqRange
	n := 0
	for s := t.contiguous + 1; s <= upto && n < limit; s++ {
		if _, ok := t.above[s]; ok {
			continue
		}
		n++
		if l := len(out); l > 0 && out[l-1].Last == s-1 {
			out[l-1].Last = s
			continue
		}
		out = append(out, &pb.SeqRange{Node: k.Node, Epoch: k.Epoch, First: s, Last: s})
	}
	return out
}

// summary is the digest entry of the sequence, listing at most limit
// numbers above contiguous.
func (t *seqTrack) summary(k SeqKey, limit int) *pb.SeqSummary {
	s := &pb.SeqSummary{Node: k.Node, Epoch: k.Epoch, Contiguous: t.contiguous}
	if len(t.above) > 0 {
		s.Above = make([]uint64, 0, len(t.above))
		for n := range t.above {
			s.Above = append(s.Above, n)
		}
		slices.Sort(s.Above)
		if len(s.Above) > limit {
			s.Above = s.Above[:limit]
			s.Truncated = true
		}
	}
	return s
}

// lacks reports whether the digest entry d names a number t does not hold.
func (t *seqTrack) lacks(d *pb.SeqSummary) bool {
	if d.GetContiguous() > t.contiguous {
		// Some number in (t.contiguous, d.contiguous] is missing unless all
		// of them are in above.
		if d.GetContiguous()-t.contiguous > uint64(len(t.above)) {
			return true
		}
		for s := t.contiguous + 1; s <= d.GetContiguous(); s++ {
			if _, ok := t.above[s]; !ok {
				return true
			}
		}
	}
	for _, s := range d.GetAbove() {
		if !t.has(s) {
			return true
		}
	}
	return false
}

// summaryHas reports whether digest entry d (nil: the peer does not know
// the sequence) holds number s, and whether s is within what d describes
// (above a truncated list nothing is known).
func summaryHas(d *pb.SeqSummary, s uint64) (has, known bool) {
	if d == nil {
		return false, true
	}
	if s <= d.GetContiguous() {
		return true, true
	}
	above := d.GetAbove()
	if _, ok := slices.BinarySearch(above, s); ok {
		return true, true
	}
	if d.GetTruncated() && len(above) > 0 && s > above[len(above)-1] {
		return false, false
	}
	return false, true
}
