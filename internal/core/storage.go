package core

import (
	"container/heap"
	"sort"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
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
	SRTT       time.Duration // smoothed round trip (EWMA, weight 1/8), 0 until the first ACK
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
//     receipt, so late duplicates are still suppressed. It is an otter cache
//     bounded to MaxSeen entries.
//
// Decay (Expire) retires hot entries whose TTL has passed, lets the otter
// cache drop expired ids and rotates the diameter estimate.
type Storage struct {
	cfg *Config

	active map[string]*Entry
	expiry expiryHeap

	clock *manualClock
	seen  *otter.Cache[string, struct{}]

	peers map[string]*PeerStats

	// Diameter estimate: the largest hop count seen in the current and the
	// previous HopWindow.
	hopsCur, hopsPrev uint32
	windowStart       time.Time

	ttl time.Duration // current adaptive TTL, refreshed by refreshTTL

	seenEvicted  atomic.Uint64 // ids dropped from the long cache before LongTTL
	retiredEarly uint64        // hot entries retired because of MaxActive
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
		clock:  &manualClock{},
		peers:  make(map[string]*PeerStats),
	}
	s.seen = otter.Must(&otter.Options[string, struct{}]{
		MaximumSize:      c.MaxSeen,
		ExpiryCalculator: otter.ExpiryWriting[string, struct{}](c.LongTTL),
		// Time comes from the caller, and all maintenance runs on the
		// caller's goroutine: the cache starts no goroutine of its own.
		Clock:    s.clock,
		Executor: func(fn func()) { fn() },
		OnDeletion: func(e otter.DeletionEvent[string, struct{}]) {
			if e.Cause == otter.CauseOverflow {
				s.seenEvicted.Add(1)
			}
		},
	})
	s.refreshTTL()
	return s
}

// manualClock is the otter clock: it reads the time last passed in by the
// Storage's caller, and never ticks (expiry happens during Expire).
type manualClock struct{ now atomic.Int64 }

func (c *manualClock) NowNano() int64                      { return c.now.Load() }
func (c *manualClock) Tick(time.Duration) <-chan time.Time { return nil }

func (s *Storage) setNow(now time.Time) { s.clock.now.Store(now.UnixNano()) }

// Seen reports whether hash has been received before and is still
// remembered (hot or long-TTL).
func (s *Storage) Seen(now time.Time, hash string) bool {
	if _, ok := s.active[hash]; ok {
		return true
	}
	s.setNow(now)
	_, ok := s.seen.GetIfPresent(hash)
	return ok
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
	s.setNow(now)
	s.seen.Set(e.Hash, struct{}{})
	s.observeHops(now, e.Hops)
}

// Forget removes every trace of hash, so a later copy counts as new. The
// runtime uses it when it could not hand a message to the application.
func (s *Storage) Forget(hash string) {
	if e, ok := s.active[hash]; ok {
		heap.Remove(&s.expiry, e.index)
		delete(s.active, hash)
	}
	s.seen.Invalidate(hash)
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
	s.setNow(now)
	s.seen.CleanUp()
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
	if len(s.peers) == 0 {
		return s.cfg.InitialRTT
	}
	var sum float64
	for _, p := range s.peers {
		rtt := p.SRTT
		if rtt == 0 {
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
	t := time.Duration(ttlSafety*s.Diameter()) * s.HopLatency()
	s.ttl = min(max(t, s.cfg.MinTTL), s.cfg.MaxTTL)
}

// AddPeer creates the ACK table row of a neighbour if it has none, and
// recomputes the TTL (a new neighbour changes the mean hop latency).
func (s *Storage) AddPeer(peer string) {
	if _, ok := s.peers[peer]; !ok {
		s.peers[peer] = &PeerStats{}
		s.refreshTTL()
	}
}

// RemovePeer drops the row of a neighbour.
func (s *Storage) RemovePeer(peer string) {
	delete(s.peers, peer)
	s.refreshTTL()
}

// Peer returns the row of a neighbour, or nil.
func (s *Storage) Peer(peer string) *PeerStats { return s.peers[peer] }

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

// RecordAck records an ACK from peer that took rtt.
func (s *Storage) RecordAck(now time.Time, peer string, rtt time.Duration, duplicate bool) {
	p := s.peers[peer]
	if p == nil {
		return // removed while the send was in flight
	}
	p.Acked++
	if duplicate {
		p.Duplicates++
	}
	p.LastRTT = rtt
	p.LastAck = now
	if p.SRTT == 0 {
		p.SRTT = rtt
	} else {
		p.SRTT += time.Duration(ewmaWeight * float64(rtt-p.SRTT))
	}
	p.Loss -= ewmaWeight * p.Loss
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
}

// StorageStats is a snapshot of the sizes of a Storage.
type StorageStats struct {
	Active       int           // messages in hot state
	Seen         int           // ids in the long-TTL cache (estimate: may count expired ids until the next Expire)
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
		Seen:         s.seen.EstimatedSize(),
		SeenEvicted:  s.seenEvicted.Load(),
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
