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

// seqMsgs are the stored messages of one sequence, with the range of
// numbers they span (for scanning in order).
type seqMsgs struct {
	m        map[uint64]*storedMsg
	min, max uint64
	// marks records, per neighbour bit, the number up to which every
	// stored message has been marked held by that neighbour from its
	// digests' contiguous prefixes: the next digest marks only what is
	// above it. One entry per stream neighbour at most.
	marks []mark
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
		sm = &seqMsgs{m: make(map[uint64]*storedMsg), min: m.seq, max: m.seq}
		s.bySeq[m.key] = sm
	}
	if _, dup := sm.m[m.seq]; dup {
		return
	}
	for _, mk := range sm.marks { // neighbours whose digests said they hold it
		if m.seq <= mk.upto {
			m.holders |= mk.bit
		}
	}
	sm.m[m.seq] = m
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
		return sm.m[seq]
	}
	return nil
}

func (s *msgStore) popOldest() {
	m := s.fifo[s.head]
	s.fifo[s.head] = nil
	s.head++
	s.bytes -= m.size()
	if sm := s.bySeq[m.key]; sm != nil && sm.m[m.seq] == m {
		delete(sm.m, m.seq)
		if len(sm.m) == 0 {
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
	lo, hi = max(lo, sm.min), min(hi, sm.max)
	if lo > hi {
		return
	}
	if hi-lo < 2*uint64(len(sm.m)) {
		for x := lo; x <= hi; x++ {
			if m := sm.m[x]; m != nil {
				m.holders |= bit
			}
		}
		return
	}
	for x, m := range sm.m {
		if x >= lo && x <= hi {
			m.holders |= bit
		}
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
// order. It scans the range when that is about as small as the set (the
// usual case: a sequence stored without gaps), and sorts the set
// otherwise, so its cost never depends on how far apart numbers from the
// network are.
func (sm *seqMsgs) numbersFrom(lo uint64, limit int) []uint64 {
	if lo > sm.max {
		return nil
	}
	var out []uint64
	if lo = max(lo, sm.min); sm.max-lo < 2*uint64(len(sm.m)) {
		for s := lo; s <= sm.max && len(out) < limit; s++ {
			if _, ok := sm.m[s]; ok {
				out = append(out, s)
			}
		}
		return out
	}
	for s := range sm.m {
		if s >= lo {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)]
}
