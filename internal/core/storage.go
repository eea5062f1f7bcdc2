package core

import (
	"container/heap"
	"sort"
	"time"
)

// Entry is the hot state of one message on one node: it exists from the
// first receipt until its adaptive TTL expires (see Storage.TTL).
type Entry struct {
	Hash      string
	Origin    string
	FirstFrom string    // the neighbour (or publisher) the first copy came from
	Hops      uint32    // hops of the first copy
	FirstSeen time.Time // when the first copy arrived
	Expires   time.Time // end of hot state; then only the id is remembered
	Copies    int       // copies received, the first included
	FirstVia  Via       // how the first copy arrived
	// Targets records what happened to each forward of this message.
	Targets []TargetStatus

	index int // position in the expiry heap
}

// TargetStatus is the ACK bookkeeping of one forward.
type TargetStatus struct {
	Peer     string
	Attempts int
	Acked    bool // the neighbour acknowledged (duplicate or not)
	GaveUp   bool // every attempt failed
}

// PeerStats is the per-neighbour ACK statistics table row.
type PeerStats struct {
	Sent       uint64        // send attempts, retries included
	Acked      uint64        // attempts answered with an ACK
	Failed     uint64        // attempts that failed or timed out
	Duplicates uint64        // ACKs that said the neighbour already had the message
	LastRTT    time.Duration // round trip of the latest ACK
	SRTT       time.Duration // smoothed round trip (EWMA, weight 1/8); meaningless while Acked is 0
	LastAck    time.Time     // zero until the first ACK
	LastFail   time.Time     // zero until the first failure
	// Loss is a smoothed failure ratio of attempts (EWMA, weight 1/8) in [0,1].
	Loss float64
}

// Storage is one node's LocalStorage: the seen-message caches, the
// per-neighbour ACK table and the adaptive TTL. It is a plain data structure
// driven by explicit times; it is not safe for concurrent use.
//
// Two tiers remember a message:
//   - hot state (Entry), kept for the adaptive TTL (MinTTL..MaxTTL), carries
//     the ACK bookkeeping of its forwards;
//   - the long-TTL cache keeps only the id for LongTTL (10 min) after first
//     receipt, so late duplicates are still suppressed. It is bounded to
//     MaxSeen entries; past that the oldest ids are evicted first.
//
// Decay (Expire) retires hot entries whose TTL has passed, drops expired
// ids from the long-TTL cache and rotates the diameter estimate.
type Storage struct {
	cfg *Config

	hopLatency time.Duration // HopLatency's cache, valid while hopValid
	hopValid   bool

	active map[string]*Entry
	expiry expiryHeap

	// The long-TTL cache. Every id gets the same LongTTL at its first
	// receipt, so insertion order is expiry order, and the oldest id is both
	// the next to expire and the least likely to see another copy: a FIFO
	// serves both expiry and eviction. (A frequency-based cache such as
	// W-TinyLFU is wrong here: every id is written once, so on overflow it
	// rejects the newest ids and a duplicate seconds late is delivered again.)
	seen      map[string]int64 // id → end of its LongTTL, UnixNano
	seenQueue []seenRecord     // ids in insertion order, from seenHead on; may hold stale records (see popSeen)
	seenHead  int

	peers map[string]*PeerStats

	// Diameter estimate: the largest hop count seen in the current and the
	// previous HopWindow.
	hopsCur, hopsPrev uint32
	windowStart       time.Time

	ttl time.Duration // current adaptive TTL, refreshed by refreshTTL

	seenEvicted  uint64 // ids dropped from the long cache before LongTTL
	retiredEarly uint64 // hot entries retired because of MaxActive
}

// seenRecord is one id in the long-TTL cache's queue.
type seenRecord struct {
	hash    string
	expires int64 // UnixNano
}

// priorDiameter is the path length assumed before any hop count has been
// observed: long enough for a ring of a few tens of nodes, so a new node
// errs on the side of keeping state.
const priorDiameter = 16

// ttlSafety multiplies the estimated propagation time: copies of a message
// arrive along paths longer than the shortest one, and retries add delay.
const ttlSafety = 4

// NewStorage returns an empty Storage. c must have been validated.
func NewStorage(c *Config) *Storage {
	s := &Storage{
		cfg:    c,
		active: make(map[string]*Entry),
		seen:   make(map[string]int64),
		peers:  make(map[string]*PeerStats),
	}
	s.refreshTTL()
	return s
}

// popSeen removes the oldest record of the long-TTL queue, and its id if
// the record is live: a record is stale when its id was forgotten (and
// perhaps received again, with a later expiry) after it was queued. It
// reports whether an id was removed.
func (s *Storage) popSeen() bool {
	r := s.seenQueue[s.seenHead]
	s.seenQueue[s.seenHead] = seenRecord{}
	s.seenHead++
	if s.seenHead == len(s.seenQueue) {
		s.seenQueue, s.seenHead = s.seenQueue[:0], 0
	} else if s.seenHead >= 1024 && s.seenHead >= len(s.seenQueue)/2 {
		n := copy(s.seenQueue, s.seenQueue[s.seenHead:])
		clear(s.seenQueue[n:])
		s.seenQueue, s.seenHead = s.seenQueue[:n], 0
	}
	if exp, ok := s.seen[r.hash]; ok && exp == r.expires {
		delete(s.seen, r.hash)
		return true
	}
	return false
}

// Seen reports whether hash has been received before and is still
// remembered (hot or long-TTL).
func (s *Storage) Seen(now time.Time, hash string) bool {
	if _, ok := s.active[hash]; ok {
		return true
	}
	exp, ok := s.seen[hash]
	return ok && exp > now.UnixNano()
}

// Remember adds hash to the long-TTL cache until expires (a message a
// previous life of the node received; see Node.Restore).
func (s *Storage) Remember(hash string, expires time.Time) {
	exp := expires.UnixNano()
	if _, ok := s.seen[hash]; ok {
		return
	}
	s.seen[hash] = exp
	s.seenQueue = append(s.seenQueue, seenRecord{hash: hash, expires: exp})
	for len(s.seen) > s.cfg.MaxSeen {
		if s.popSeen() {
			s.seenEvicted++
		}
	}
}

// Active returns the hot state of hash, or nil.
func (s *Storage) Active(hash string) *Entry { return s.active[hash] }

// Insert records the first receipt of e.Hash at now and gives it the
// current TTL. The caller must have checked Seen.
func (s *Storage) Insert(now time.Time, e *Entry) {
	if len(s.active) >= s.cfg.MaxActive {
		old := heap.Pop(&s.expiry).(*Entry)
		delete(s.active, old.Hash)
		s.retiredEarly++
	}
	e.FirstSeen = now
	e.Expires = now.Add(s.ttl)
	e.Copies = 1
	s.active[e.Hash] = e
	heap.Push(&s.expiry, e)
	exp := now.Add(s.cfg.LongTTL).UnixNano()
	s.seen[e.Hash] = exp
	s.seenQueue = append(s.seenQueue, seenRecord{hash: e.Hash, expires: exp})
	for len(s.seen) > s.cfg.MaxSeen {
		if s.popSeen() {
			s.seenEvicted++
		}
	}
	s.observeHops(now, e.Hops)
}

// Forget removes every trace of hash, so a later copy counts as new. The
// runtime uses it when it could not hand a message to the application.
// It reports whether hash was remembered.
func (s *Storage) Forget(hash string) bool {
	e, hot := s.active[hash]
	if hot {
		heap.Remove(&s.expiry, e.index)
		delete(s.active, hash)
	}
	_, long := s.seen[hash]
	delete(s.seen, hash) // its queue record is now stale
	return hot || long
}

// Expire is the periodic decay: it retires hot entries whose TTL has
// passed, drops expired ids from the long-TTL cache, rotates the diameter
// estimate and recomputes the TTL. It returns the number of hot entries
// retired.
func (s *Storage) Expire(now time.Time) int {
	n := 0
	for len(s.expiry) > 0 && !s.expiry[0].Expires.After(now) {
		e := heap.Pop(&s.expiry).(*Entry)
		delete(s.active, e.Hash)
		n++
	}
	for nowNano := now.UnixNano(); s.seenHead < len(s.seenQueue) && s.seenQueue[s.seenHead].expires <= nowNano; {
		s.popSeen()
	}
	s.observeHops(now, 0)
	s.refreshTTL()
	return n
}

// observeHops folds one hop count into the windowed maximum.
func (s *Storage) observeHops(now time.Time, hops uint32) {
	if s.windowStart.IsZero() {
		s.windowStart = now
	}
	if w := s.cfg.HopWindow; now.Sub(s.windowStart) >= w {
		if now.Sub(s.windowStart) >= 2*w {
			s.hopsPrev = 0 // nothing was seen in the last full window
		} else {
			s.hopsPrev = s.hopsCur
		}
		s.hopsCur = 0
		s.windowStart = now
	}
	if hops > s.hopsCur {
		s.hopsCur = hops
		if hops > s.hopsPrev {
			s.refreshTTL()
		}
	}
}

// Diameter is the current estimate, in hops, of the longest path a message
// travels to reach this node: one more than the largest hop count seen in
// the last one to two HopWindows, or priorDiameter when no message from
// another node arrived in that time.
func (s *Storage) Diameter() int {
	m := max(s.hopsCur, s.hopsPrev)
	if m == 0 {
		return priorDiameter
	}
	return int(m) + 1
}

// HopLatency is the estimated time one hop costs: the mean over neighbours
// of the smoothed RTT (InitialRTT before a neighbour's first ACK) plus the
// expected delay of retries, loss × (AckTimeout + RetryBackoff).
func (s *Storage) HopLatency() time.Duration {
	if !s.hopValid {
		s.hopLatency, s.hopValid = s.computeHopLatency(), true
	}
	return s.hopLatency
}

// computeHopLatency is HopLatency without the cache (ACKs and failures
// invalidate it).
func (s *Storage) computeHopLatency() time.Duration {
	if len(s.peers) == 0 {
		return s.cfg.InitialRTT
	}
	var sum float64
	for _, p := range s.peers {
		rtt := p.SRTT
		if p.Acked == 0 {
			rtt = s.cfg.InitialRTT
		}
		sum += float64(rtt) + p.Loss*float64(s.cfg.AckTimeout+s.cfg.RetryBackoff)
	}
	return time.Duration(sum / float64(len(s.peers)))
}

// TTL is the current adaptive TTL of hot state:
//
//	clamp(MinTTL, MaxTTL, ttlSafety × Diameter × HopLatency)
//
// i.e. a few times the time a message needs to cross the network as this
// node observes it. It grows with longer paths (rings, chains), slower
// links and lossy links, and shrinks back when they improve.
func (s *Storage) TTL() time.Duration { return s.ttl }

func (s *Storage) refreshTTL() {
	// In floating point: the diameter comes from hop counts on the wire (any
	// uint32), and for large ones the product overflows time.Duration,
	// which would turn the longest paths into the shortest TTL.
	t := float64(ttlSafety*s.Diameter()) * float64(s.HopLatency())
	s.ttl = time.Duration(min(max(t, float64(s.cfg.MinTTL)), float64(s.cfg.MaxTTL)))
}

// AddPeer creates the ACK table row of a neighbour if it has none, and
// recomputes the TTL (a new neighbour changes the mean hop latency).
func (s *Storage) AddPeer(peer string) {
	if _, ok := s.peers[peer]; !ok {
		s.peers[peer] = &PeerStats{}
		s.hopValid = false
		s.refreshTTL()
	}
}

// RemovePeer drops the row of a neighbour.
func (s *Storage) RemovePeer(peer string) {
	delete(s.peers, peer)
	s.hopValid = false
	s.refreshTTL()
}

// Peer returns the row of a neighbour, or nil; changes to it count (the
// hop latency is recomputed).
func (s *Storage) Peer(peer string) *PeerStats {
	s.hopValid = false // the caller may change the row
	return s.peers[peer]
}

// Peers returns a copy of the ACK table, sorted by neighbour id.
func (s *Storage) Peers() []NamedPeerStats {
	out := make([]NamedPeerStats, 0, len(s.peers))
	for id, p := range s.peers {
		out = append(out, NamedPeerStats{ID: id, PeerStats: *p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// NamedPeerStats is a PeerStats with the neighbour's id.
type NamedPeerStats struct {
	ID string
	PeerStats
}

const ewmaWeight = 1.0 / 8

// RecordSent counts one send attempt to peer.
func (s *Storage) RecordSent(peer string) {
	if p := s.peers[peer]; p != nil {
		p.Sent++
	}
}

// RecordSentN counts k messages sent to peer on its stream.
func (s *Storage) RecordSentN(peer string, k int) {
	if p := s.peers[peer]; p != nil {
		p.Sent += uint64(k)
	}
}

// RecordAck records an ACK from peer that took rtt.
func (s *Storage) RecordAck(now time.Time, peer string, rtt time.Duration, duplicate bool) {
	s.RecordAckN(now, peer, 1, rtt, duplicate)
}

// RecordAckN records one ACK from peer that covered k messages (a
// stream's cumulative ACK) and took rtt for the newest of them.
func (s *Storage) RecordAckN(now time.Time, peer string, k int, rtt time.Duration, duplicate bool) {
	p := s.peers[peer]
	if p == nil {
		return // removed while the send was in flight
	}
	p.Acked += uint64(k)
	if duplicate {
		p.Duplicates++
	}
	p.LastRTT = rtt
	p.LastAck = now
	if p.Acked == uint64(k) {
		p.SRTT = rtt
	} else {
		p.SRTT += time.Duration(ewmaWeight * float64(rtt-p.SRTT))
	}
	p.Loss -= ewmaWeight * p.Loss
	s.hopValid = false
}

// RecordFailure records a failed or timed-out attempt to peer.
func (s *Storage) RecordFailure(now time.Time, peer string) {
	p := s.peers[peer]
	if p == nil {
		return
	}
	p.Failed++
	p.LastFail = now
	p.Loss += ewmaWeight * (1 - p.Loss)
	s.hopValid = false
}

// StorageStats is a snapshot of the sizes of a Storage.
type StorageStats struct {
	Active       int           // messages in hot state
	Seen         int           // ids in the long-TTL cache (may count expired ids until the next Expire)
	SeenEvicted  uint64        // ids evicted from the long cache before LongTTL because of MaxSeen
	RetiredEarly uint64        // hot entries retired before their TTL because of MaxActive
	TTL          time.Duration // current adaptive TTL
	Diameter     int           // current diameter estimate, hops
	HopLatency   time.Duration // current per-hop latency estimate
}

// Stats returns a snapshot of the sizes and the TTL estimate.
func (s *Storage) Stats() StorageStats {
	return StorageStats{
		Active:       len(s.active),
		Seen:         len(s.seen),
		SeenEvicted:  s.seenEvicted,
		RetiredEarly: s.retiredEarly,
		TTL:          s.ttl,
		Diameter:     s.Diameter(),
		HopLatency:   s.HopLatency(),
	}
}

// expiryHeap orders hot entries by Expires (earliest first). The TTL
// changes over time, so insertion order is not expiry order.
type expiryHeap []*Entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].Expires.Before(h[j].Expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*Entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}
