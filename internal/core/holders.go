package core

import (
	"math"
	"math/bits"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// This file is what a node knows about what its stream neighbours hold,
// and the two decisions that rest on it (docs/DESIGN.md §6a, "No message
// leaves every store while a live node lacks it"):
//
//   - the store keeps every message some neighbour whose stream is up is
//     not known to hold (msgStore.evict), and the node is congested while
//     such messages keep the store over its bound (Congested: publishers
//     wait, and the congestion is passed on to the other nodes, so that
//     remote publishers wait too);
//   - a gap in a sequence is given up only when no current stream
//     neighbour can still send it: every one of them has reported, in its
//     latest digest, a store floor above the gap (or no store of that
//     sequence at all). Each give-up is a Skip, for the runtime to log.
//
// Knowledge of a neighbour's holdings comes from everything it sends: a
// copy of a message, an announcement, a digest, a cumulative ACK covering
// an envelope that carried the message, and being the message's origin.

// maxSlots is the number of stream neighbours whose holdings are tracked
// (one bit each). Neighbours beyond it are not waited for.
const maxSlots = 64

// holderState is the bookkeeping of the neighbours' holdings.
type holderState struct {
	slot map[string]uint64 // neighbour → its bit
	free uint64            // bits not given to any neighbour
	// need has the bits of the neighbours the store waits for: those
	// whose stream is up, and those whose stream is down (or not up yet)
	// for less than Config.PeerGrace — a neighbour that just connected,
	// or that reconnects after a blip, must not find that the messages
	// published meanwhile left every store. down records since when.
	need   uint64
	down   map[uint64]time.Time // bit → when its stream went down; zero: not up yet, since the next Tick
	floors map[string]map[SeqKey]uint64
}

func newHolderState() holderState {
	return holderState{slot: make(map[string]uint64), free: math.MaxUint64, down: make(map[uint64]time.Time),
		floors: make(map[string]map[SeqKey]uint64)}
}

// bitOf returns peer's bit, assigning one to a stream neighbour that has
// none (0 when all are taken or peer is not a stream neighbour).
func (n *Node) bitOf(peer string) uint64 {
	h := &n.holders
	if b, ok := h.slot[peer]; ok {
		return b
	}
	if p := n.peers[peer]; p == nil || p.kind != KindStream || h.free == 0 {
		return 0
	}
	b := uint64(1) << bits.TrailingZeros64(h.free)
	h.free &^= b
	h.slot[peer] = b
	h.need |= b
	h.down[b] = time.Time{} // not up yet: waited for PeerGrace from the next Tick
	n.store.clearBit(b)     // what its previous owner held is not this peer's
	return b
}

// releaseSlot frees peer's bit (it is no longer a stream neighbour).
func (n *Node) releaseSlot(peer string) {
	h := &n.holders
	if b, ok := h.slot[peer]; ok {
		delete(h.slot, peer)
		delete(h.down, b)
		h.free |= b
		h.need &^= b
		n.store.evict(h.need)
	}
	delete(h.floors, peer)
}

// PeerUp records at now that the stream to neighbour peer is up (its
// hello was answered) or down. The store waits for a neighbour while its
// stream is up and for Config.PeerGrace after it went down: one that is
// down longer gets what it missed from anyone when it is back (digests),
// or gives it up.
func (n *Node) PeerUp(now time.Time, peer string, up bool) {
	b := n.bitOf(peer)
	if b == 0 {
		return
	}
	if up {
		delete(n.holders.down, b)
		n.holders.need |= b
	} else {
		n.holders.down[b] = now
	}
}

// expireGrace stops waiting for neighbours down longer than PeerGrace.
func (n *Node) expireGrace(now time.Time) {
	h := &n.holders
	for b, since := range h.down {
		switch {
		case since.IsZero():
			h.down[b] = now
		case now.Sub(since) >= n.cfg.PeerGrace:
			delete(h.down, b)
			h.need &^= b
		}
	}
	n.store.evict(h.need)
}

// holds records that peer holds the messages lo..hi of sequence k.
func (n *Node) holds(peer string, k SeqKey, lo, hi uint64) {
	b, ok := n.holders.slot[peer]
	if !ok {
		b = n.bitOf(peer)
	}
	if b != 0 {
		n.store.hold(b, k, lo, hi)
	}
}

// Congested reports whether the store is over its bound with messages a
// live neighbour is not known to hold: the node cannot take more from its
// publishers without evicting what may still be needed.
func (n *Node) Congested() bool { return n.store.over() }

// Skip is a range of a sequence this node gave up: it will never deliver
// those numbers (they may not exist: a numbering node can crash between
// numbering a message and sending it).
type Skip struct {
	Key         SeqKey
	First, Last uint64
	Skipped     uint64 // numbers given up in First..Last (some in it may be held)
	Reason      string
}

// maxSkips bounds the skips kept between two TakeSkips (the counter
// HolesSkipped is exact regardless).
const maxSkips = 256

func (n *Node) skip(k SeqKey, first, last, skipped uint64, reason string) {
	if skipped == 0 {
		return
	}
	n.counters.HolesSkipped += skipped
	if len(n.skips) < maxSkips {
		n.skips = append(n.skips, Skip{Key: k, First: first, Last: last, Skipped: skipped, Reason: reason})
	}
}

// TakeSkips returns and clears the give-ups since the last call, for the
// runtime to log.
func (n *Node) TakeSkips() []Skip {
	s := n.skips
	n.skips = nil
	return s
}

// noFloor is the floor of a sequence a neighbour stores nothing of.
const noFloor = math.MaxUint64

// recordFloors remembers the store floors of peer's digest: for each
// sequence, the lowest number it can still send (noFloor for sequences it
// does not list, or stores nothing of).
func (n *Node) recordFloors(peer string, d []*pb.SeqSummary) {
	f := make(map[SeqKey]uint64, len(d))
	for _, s := range d {
		floor := s.GetFloor()
		if floor == 0 {
			floor = noFloor
		}
		f[SeqKey{Node: s.GetNode(), Epoch: s.GetEpoch()}] = floor
	}
	n.holders.floors[peer] = f
}

// giveUpFloor is the number below which no current stream neighbour can
// send sequence k any more: the lowest of their latest reported floors; 0
// while some neighbour's latest digest does not list the sequence
// (nothing is given up without hearing from all of them).
func (n *Node) giveUpFloor(k SeqKey) uint64 {
	floor := uint64(noFloor)
	streams := 0
	for _, id := range n.order {
		if n.peers[id].kind != KindStream {
			continue
		}
		streams++
		v, listed := n.holders.floors[id][k]
		if !listed {
			// Its latest digest does not know the sequence (it may be
			// older than the sequence): nothing is known of what it holds.
			return 0
		}
		floor = min(floor, v)
	}
	if streams == 0 || floor == noFloor {
		// Every neighbour knows the sequence and stores none of it: they
		// are missing the same numbers, and may get them from further
		// away. Nothing is given up; Counters.Missing shows the gaps.
		return 0
	}
	return floor
}

// Refused records that peer refused the messages of frames (larger than
// it accepts): it will never hold them, and the store must not keep them
// for it.
func (n *Node) Refused(peer string, frames []Frame) {
	for _, f := range frames {
		if r := f.Range; r != nil {
			n.holds(peer, SeqKey{Node: r.GetNode(), Epoch: r.GetEpoch()}, r.GetFirst(), r.GetLast())
		}
	}
	n.store.evict(n.holders.need)
}
