package core

import (
	"slices"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// storedMsg is one message kept for repair: its serialized form (as this
// node forwards it) and its place in its sequence.
type storedMsg struct {
	hash string
	key  SeqKey
	seq  uint64
	wire []byte
	at   time.Time // when this node accepted it
	hops uint32    // the forwarded copy's hop count (the arrival's plus one)
	// holders has bit i set when the stream neighbour in slot i is known
	// to hold the message (it sent it, announced it, acknowledged it, or
	// listed it in a digest). See msgStore.
	holders uint64
}

// storedRange is a stored message and the range that names it in its
// frames, allocated as one (Node.ReceiveVia); never copied.
type storedRange struct {
	msg storedMsg
	rng pb.SeqRange
}

// msgStore keeps the messages a node accepted, serialized, so that it can
// answer grafts and anti-entropy digests. It keeps them in acceptance
// order and evicts the oldest first, by age (Config.LongTTL) and by bytes
// (Config.StoreBytes) — but the byte bound never evicts a message that a
// stream neighbour whose stream is up is not known to hold: that
// neighbour may still need it, and this node may be the last that has
// it. Past StoreBytes with such messages at its head the store is over
// (the node is congested: publishers wait, see Node.Congested); past
// twice StoreBytes it evicts them anyway, counting each (evictedUnsafe:
// a message that some neighbour may now never get from this node).
type msgStore struct {
	maxBytes int
	ttl      time.Duration

	fifo  []*storedMsg // oldest first, from head
	head  int
	bytes int
	bySeq map[SeqKey]*seqMsgs

	evicted       uint64 // messages evicted by the byte bound before their age
	evictedUnsafe uint64 // of those, ones a live stream neighbour was not known to hold
	expiredUnsafe uint64 // messages that reached LongTTL while a live stream neighbour was not known to hold them
}

// seqMsgs are the stored messages of one sequence, with bounds on the
// numbers they span (min ≤ every stored number ≤ max; min is the floor a
// digest reports).
//
// A sequence is usually stored without gaps (accepted in order, evicted
// oldest first), so the messages are kept in a window indexed by number
// rather than in a map: the lookups of every announcement, ACK and
// duplicate (hold) are then array reads, not map probes. A number that
// would stretch the window past twice what it stores (plus windowSlack)
// goes to far, a map, instead: numbers come from the network, and one far
// from the rest must not make the window large. See get, add and del.
type seqMsgs struct {
	base     uint64       // the number of win[0]
	win      []*storedMsg // win[i] is number base+i, nil when not stored; win[0] and win[len-1] are never nil
	inWin    int          // messages in win
	far      map[uint64]*storedMsg
	min, max uint64
	// marks records, per neighbour bit, the number up to which every
	// stored message has been marked held by that neighbour from its
	// digests' contiguous prefixes: the next digest marks only what is
	// above it. One entry per stream neighbour at most.
	marks []mark
}

// windowSlack is how many empty slots a window may hold beyond the
// messages in it (it is at most twice them plus this): gaps of a few
// lost numbers do not push their neighbours out to the map.
const windowSlack = 64

// count is how many messages of the sequence are stored.
func (sm *seqMsgs) count() int { return sm.inWin + len(sm.far) }

// get returns the stored message numbered x, or nil. A number is in the
// window or in far, never both; the window may grow over a number in far.
func (sm *seqMsgs) get(x uint64) *storedMsg {
	if i := x - sm.base; x >= sm.base && i < uint64(len(sm.win)) && sm.win[i] != nil {
		return sm.win[i]
	}
	return sm.far[x] // nil map: nil
}

// add stores m unless a message of its number is stored; it reports
// whether it did.
func (sm *seqMsgs) add(m *storedMsg) bool {
	if sm.get(m.seq) != nil {
		return false
	}
	x, l := m.seq, uint64(len(sm.win))
	limit := 2*uint64(sm.inWin+1) + windowSlack // the longest window after this add
	switch {
	case l == 0:
		sm.base, sm.win = x, append(sm.win[:0], m)
	case x >= sm.base && x-sm.base < l: // a gap in the window
		sm.win[x-sm.base] = m
	case x > sm.base && x-sm.base < limit: // past the end
		for uint64(len(sm.win)) < x-sm.base {
			sm.win = append(sm.win, nil)
		}
		sm.win = append(sm.win, m)
	case x < sm.base && sm.base-x+l <= limit: // before the start (a late repair)
		w := make([]*storedMsg, sm.base-x+l, 2*(sm.base-x+l))
		copy(w[sm.base-x:], sm.win)
		w[0] = m
		sm.base, sm.win = x, w
	default:
		if sm.far == nil {
			sm.far = make(map[uint64]*storedMsg)
		}
		sm.far[x] = m
		return true
	}
	sm.inWin++
	return true
}

// del removes m if it is the message stored under its number.
func (sm *seqMsgs) del(m *storedMsg) {
	x := m.seq
	if i := x - sm.base; x >= sm.base && i < uint64(len(sm.win)) && sm.win[i] == m {
		sm.win[i] = nil
		sm.inWin--
		for len(sm.win) > 0 && sm.win[0] == nil {
			sm.win = sm.win[1:]
			sm.base++
		}
		for len(sm.win) > 0 && sm.win[len(sm.win)-1] == nil {
			sm.win = sm.win[:len(sm.win)-1]
		}
		return
	}
	if sm.far[x] == m {
		delete(sm.far, x)
	}
}

// holdRange sets bit in the holders of every stored message numbered
// lo..hi (the work is bounded by what is stored, not by the range).
func (sm *seqMsgs) holdRange(bit, lo, hi uint64) {
	if l := uint64(len(sm.win)); l > 0 && lo < sm.base+l && hi >= sm.base {
		a, b := max(lo, sm.base)-sm.base, min(hi, sm.base+l-1)-sm.base
		for _, m := range sm.win[a : b+1] {
			if m != nil {
				m.holders |= bit
			}
		}
	}
	for x, m := range sm.far {
		if x >= lo && x <= hi {
			m.holders |= bit
		}
	}
}

type mark struct{ bit, upto uint64 }

func (sm *seqMsgs) marked(bit uint64) uint64 {
	for _, mk := range sm.marks {
		if mk.bit == bit {
			return mk.upto
		}
	}
	return 0
}

func (sm *seqMsgs) setMarked(bit, upto uint64) {
	for i := range sm.marks {
		if sm.marks[i].bit == bit {
			sm.marks[i].upto = upto
			return
		}
	}
	sm.marks = append(sm.marks, mark{bit, upto})
}

func newMsgStore(maxBytes int, ttl time.Duration) *msgStore {
	return &msgStore{maxBytes: maxBytes, ttl: ttl, bySeq: make(map[SeqKey]*seqMsgs)}
}

// storedOverhead approximates the memory of one entry besides its bytes.
const storedOverhead = 160

func (m *storedMsg) size() int { return len(m.wire) + len(m.hash) + storedOverhead }

// put stores m (unless a message of the same number is stored) and evicts
// what the byte bound allows; need is the mask of holders every message
// must have before the bound may evict it.
func (s *msgStore) put(m *storedMsg, need uint64) {
	sm := s.bySeq[m.key]
	if sm == nil {
		sm = &seqMsgs{min: m.seq, max: m.seq}
		s.bySeq[m.key] = sm
	}
	if !sm.add(m) {
		return
	}
	for _, mk := range sm.marks { // neighbours whose digests said they hold it
		if m.seq <= mk.upto {
			m.holders |= mk.bit
		}
	}
	sm.min, sm.max = min(sm.min, m.seq), max(sm.max, m.seq)
	s.fifo = append(s.fifo, m)
	s.bytes += m.size()
	s.evict(need)
}

// evict applies the byte bound: oldest first, while the oldest is held by
// every neighbour in need; past twice the bound, regardless.
func (s *msgStore) evict(need uint64) {
	for s.bytes > s.maxBytes && s.head < len(s.fifo)-1 {
		m := s.fifo[s.head]
		unsafe := m.holders&need != need
		if unsafe && s.bytes <= 2*s.maxBytes {
			return // over: congested until the neighbours have it
		}
		s.evicted++
		if unsafe {
			s.evictedUnsafe++
		}
		s.popOldest()
	}
}

// over reports whether the store holds more than its bound (messages a
// live neighbour may still need keep it there).
func (s *msgStore) over() bool { return s.bytes > s.maxBytes }

func (s *msgStore) get(k SeqKey, seq uint64) *storedMsg {
	if sm := s.bySeq[k]; sm != nil {
		return sm.get(seq)
	}
	return nil
}

func (s *msgStore) popOldest() {
	m := s.fifo[s.head]
	s.fifo[s.head] = nil
	s.head++
	s.bytes -= m.size()
	if sm := s.bySeq[m.key]; sm != nil && sm.get(m.seq) == m {
		sm.del(m)
		if sm.count() == 0 {
			delete(s.bySeq, m.key)
		} else if m.seq == sm.min {
			sm.min++ // a lower bound: scans skip numbers no longer present
		}
	}
	if s.head > 1024 && s.head*2 > len(s.fifo) {
		s.fifo = append([]*storedMsg(nil), s.fifo[s.head:]...)
		s.head = 0
	}
}

// expire drops messages older than the store's TTL, counting those a
// live neighbour (need) was not known to hold.
func (s *msgStore) expire(now time.Time, need uint64) {
	for s.head < len(s.fifo) && now.Sub(s.fifo[s.head].at) >= s.ttl {
		if m := s.fifo[s.head]; m.holders&need != need {
			s.expiredUnsafe++
		}
		s.popOldest()
	}
}

func (s *msgStore) len() int { return len(s.fifo) - s.head }

// hold records that the neighbour with bit holds the messages of sequence
// k numbered lo..hi that are stored (the work is bounded by what is
// stored, not by the range, which comes from the network).
func (s *msgStore) hold(bit uint64, k SeqKey, lo, hi uint64) {
	sm := s.bySeq[k]
	if sm == nil || bit == 0 {
		return
	}
	if lo, hi = max(lo, sm.min), min(hi, sm.max); lo <= hi {
		sm.holdRange(bit, lo, hi)
	}
}

// holdSummary records what a neighbour's digest entry (normalized) says
// it holds.
func (s *msgStore) holdSummary(bit uint64, d *pb.SeqSummary) {
	k := SeqKey{Node: d.GetNode(), Epoch: d.GetEpoch()}
	sm := s.bySeq[k]
	if sm == nil {
		return
	}
	lo := uint64(1)
	if len(d.GetSkipped()) == 0 {
		lo = sm.marked(bit) + 1 // already marked below
	}
	for _, r := range d.GetSkipped() { // given up: not held
		if r.GetFirst() > lo && r.GetFirst() <= d.GetContiguous() {
			s.hold(bit, k, lo, r.GetFirst()-1)
		}
		lo = max(lo, r.GetLast()+1)
	}
	s.hold(bit, k, lo, d.GetContiguous())
	if len(d.GetSkipped()) == 0 && d.GetContiguous() > sm.marked(bit) {
		sm.setMarked(bit, d.GetContiguous())
	}
	for _, sp := range d.GetHeld() {
		s.hold(bit, k, sp.GetFirst(), sp.GetLast())
	}
}

// clearBit forgets what the neighbour of a freed slot held, before the
// slot is given to another (O(store); neighbours change rarely).
func (s *msgStore) clearBit(bit uint64) {
	for _, m := range s.fifo[s.head:] {
		m.holders &^= bit
	}
	for _, sm := range s.bySeq {
		sm.marks = slices.DeleteFunc(sm.marks, func(mk mark) bool { return mk.bit == bit })
	}
}

// frame is the stored message as a repair frame.
func (m *storedMsg) frame() Frame {
	return Frame{Kind: FrameMessage, Wire: m.wire, Hash: m.hash, Repair: true,
		Range: &pb.SeqRange{Node: m.key.Node, Epoch: m.key.Epoch, First: m.seq, Last: m.seq}}
}

// numbersFrom returns the first limit stored numbers ≥ lo in ascending
// order. Its cost is bounded by what is stored, never by how far apart
// numbers from the network are: the window is scanned in order, and the
// few numbers kept apart from it (far) are merged in sorted.
func (sm *seqMsgs) numbersFrom(lo uint64, limit int) []uint64 {
	if lo > sm.max || limit <= 0 {
		return nil
	}
	var out []uint64
	if l := uint64(len(sm.win)); l > 0 && lo < sm.base+l {
		for i := max(lo, sm.base) - sm.base; i < l && (len(out) < limit || len(sm.far) > 0); i++ {
			if sm.win[i] != nil {
				out = append(out, sm.base+i)
			}
		}
	}
	if len(sm.far) > 0 {
		for x := range sm.far {
			if x >= lo {
				out = append(out, x)
			}
		}
		slices.Sort(out)
	}
	return out[:min(len(out), limit)]
}
