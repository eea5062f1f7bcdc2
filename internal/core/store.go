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
}

// msgStore keeps the messages a node accepted, serialized, so that it can
// answer grafts and anti-entropy digests. It is bounded by bytes and by
// age (Config.StoreBytes, Config.LongTTL); both evict oldest first, which
// insertion order gives, so it is a FIFO with two indexes.
type msgStore struct {
	maxBytes int
	ttl      time.Duration

	fifo  []*storedMsg // oldest first, from head
	head  int
	bytes int
	bySeq map[SeqKey]*seqMsgs

	evicted uint64 // messages evicted by the byte bound before their age
}

// seqMsgs are the stored messages of one sequence, with the range of
// numbers they span (for scanning in order).
type seqMsgs struct {
	m        map[uint64]*storedMsg
	min, max uint64
}

func newMsgStore(maxBytes int, ttl time.Duration) *msgStore {
	return &msgStore{maxBytes: maxBytes, ttl: ttl, bySeq: make(map[SeqKey]*seqMsgs)}
}

// storedOverhead approximates the memory of one entry besides its bytes.
const storedOverhead = 160

func (s *msgStore) put(m *storedMsg) {
	sm := s.bySeq[m.key]
	if sm == nil {
		sm = &seqMsgs{m: make(map[uint64]*storedMsg), min: m.seq, max: m.seq}
		s.bySeq[m.key] = sm
	}
	if _, dup := sm.m[m.seq]; dup {
		return
	}
	sm.m[m.seq] = m
	sm.min, sm.max = min(sm.min, m.seq), max(sm.max, m.seq)
	s.fifo = append(s.fifo, m)
	s.bytes += len(m.wire) + len(m.hash) + storedOverhead
	for s.bytes > s.maxBytes && s.head < len(s.fifo)-1 {
		s.evicted++
		s.popOldest()
	}
}

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
	s.bytes -= len(m.wire) + len(m.hash) + storedOverhead
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

// expire drops messages older than the store's TTL.
func (s *msgStore) expire(now time.Time) {
	for s.head < len(s.fifo) && now.Sub(s.fifo[s.head].at) >= s.ttl {
		s.popOldest()
	}
}

func (s *msgStore) len() int { return len(s.fifo) - s.head }

// frame is the stored message as a repair frame.
func (m *storedMsg) frame() Frame {
	return Frame{Kind: FrameMessage, Wire: m.wire, Hash: m.hash, Repair: true,
		Range: &pb.SeqRange{Node: m.key.Node, Epoch: m.key.Epoch, First: m.seq, Last: m.seq}}
}

// numbersFrom returns the first limit stored numbers ≥ lo in ascending
// order. It scans
// the range when that is about as small as the set (the usual case: a
// sequence stored without gaps), and sorts the set otherwise, so its cost
// never depends on how far apart numbers from the network are.
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
