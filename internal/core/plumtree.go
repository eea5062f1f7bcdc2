package core

import (
	"cmp"
	"slices"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// This file is the streaming half of the protocol: Plumtree (Leitão,
// Pereira, Rodrigues 2007) over the neighbours that speak Gossip.Stream,
// plus anti-entropy. Its outputs are Frames for the runtime to queue on
// the peer's stream; see docs/DESIGN.md §6a.
//
//   - Eager push: a fresh message goes in full to every eager stream
//     neighbour (all of them at first).
//   - Lazy push: the other stream neighbours get an announcement (IHAVE) of
//     its place in its sequence, which the runtime coalesces into ranges.
//   - PRUNE: a copy that arrives by eager push after the first one tells
//     its sender to make this node lazy: the eager links converge to a
//     spanning tree, so each node receives each message about once.
//   - GRAFT: numbers announced but not received within GraftTimeout are
//     requested from an announcer, which also makes the requester eager
//     again (the tree repairs itself around failed nodes and lost links).
//   - Anti-entropy: every SyncInterval the runtime sends a digest of what
//     the node holds to a random stream neighbour, which answers with what
//     the digest lacks and its own digest when it lacks something itself.

// PeerKind is how a neighbour is sent to.
type PeerKind uint8

const (
	// KindUnary neighbours get the seed's push: Fanout of them (Router's
	// choice) get each fresh message by PutMessageToClient, with retries.
	KindUnary PeerKind = iota
	// KindStream neighbours speak Gossip.Stream and take part in
	// Plumtree and anti-entropy.
	KindStream
)

// FrameKind says what a Frame carries.
type FrameKind uint8

const (
	FrameMessage FrameKind = iota + 1 // Wire: one serialized GossipMessage
	FrameIHave                        // Range: an announcement
	FrameGraft                        // Range: a request
	FramePrune                        // Range.Node: "push this source's messages to me lazily"
	FrameDigest                       // Digest: anti-entropy
)

// Frame is one item for a peer's stream. The runtime queues frames per
// peer and its writer coalesces whatever is queued into one Envelope
// (consecutive IHAVE numbers become one range).
type Frame struct {
	Kind   FrameKind
	Wire   []byte       // FrameMessage; shared between peers, never modified
	Hash   string       // FrameMessage: the message id
	Repair bool         // FrameMessage: an answer to a graft or a digest
	Urgent bool         // FrameIHave: a source's first announcement on this link, sent without waiting for a flush (see lazyFor)
	Owned  bool         // Range belongs to this frame alone: a queue merge copied it (Stream.Push), so later merges may extend it in place
	Range  *pb.SeqRange // FrameIHave, FrameGraft; FrameMessage: its own number; FramePrune: Node. Shared, never modified
	Digest *pb.Digest
}

// Out is a Frame addressed to a peer.
type Out struct {
	Peer  string
	Frame Frame
}

// peerState is the Plumtree state of one neighbour.
type peerState struct {
	kind PeerKind
	// lazy records, per source (seq node), whether this stream neighbour
	// gets that source's messages announced rather than pushed: one
	// directed Plumtree per source, so concurrent messages from different
	// sources cannot prune each other's tree links. A source without an
	// entry starts from shared: lazy after this peer's latest PRUNE, eager
	// again after its latest GRAFT or once it became this node's parent for
	// any source — so a new source's first messages mostly follow the
	// links the other trees use instead of flooding. (Updated by prunes
	// alone, shared drifted to lazy everywhere once prunes became
	// directed, and new sources then spread by grafts alone: found by the
	// bench suite's smoke test.)
	lazy   map[string]bool
	shared bool
}

// lazyFor returns whether src's messages go lazily to this peer; a source
// seen for the first time starts from the shared state (a snapshot, so
// that later prunes of other sources do not move its tree), and first
// reports that it did. The snapshot spares a new source a flood but need
// not span the overlay, so a node it misses learns of the source only
// from an announcement: that first announcement is urgent (sent at once,
// not at the next flush), and a node with no parent for the source grafts
// on it soon (HandleIHave, youngGraftTimeout). Flooding each new
// source's first message instead cost 4.3 copies per delivery where
// sources publish about once (TestPlumtreeVersusPush; 2.15 with the
// snapshot), and at N = 50 on real gRPC its CPU queued other messages:
// p99 to every node 68–90 ms against 43–93 in the runs alternating with
// it (31–46 in seven others).
func (p *peerState) lazyFor(src string) (lazy, first bool) {
	if l, ok := p.lazy[src]; ok {
		return l, false
	}
	if p.lazy == nil {
		p.lazy = make(map[string]bool)
	}
	p.lazy[src] = p.shared
	return p.shared, true
}

func (p *peerState) setLazy(src string, lazy bool) {
	if p.lazy == nil {
		p.lazy = make(map[string]bool)
	}
	p.lazy[src] = lazy
	p.shared = lazy
}

// SetPeerKind sets how neighbour id is sent to; it reports whether id is
// a neighbour. A neighbour becoming a stream neighbour starts eager.
func (n *Node) SetPeerKind(id string, k PeerKind) bool {
	p := n.peers[id]
	if p == nil {
		return false
	}
	if p.kind != k {
		p.kind, p.lazy, p.shared = k, nil, false
		if k == KindStream {
			n.bitOf(id) // the store waits for it from now on (PeerGrace)
		} else {
			n.releaseSlot(id)
		}
	}
	return true
}

// parent is a node's link into one source's tree: the peer whose eager
// copies of that source's messages it keeps. A duplicate from any other
// eager sender is pruned; a duplicate from the parent is not, so that a
// node always keeps a way into the tree while copies race along several
// paths.
//
// The parent is sticky (hysteresis). Under load, queueing reorders which
// path delivers first; when every first copy made its sender the parent,
// the parent flapped between paths, each flap pruned the path that had
// just been the tree and re-eagered another, and the holes this left were
// grafted: at saturation the copies per delivery climbed to 3–5. So:
//   - a first copy from another peer makes it the parent only when the
//     parent has brought no first copy for a graft timeout (it is gone,
//     pruned this node, or its path broke);
//   - a parent whose copies lose the race to one other eager path
//     parentSwitch times in a row is replaced by that path (it is
//     faster), and pruned.
//
// Trees are also shortened (Plumtree's optimisation step): an
// announcement from another peer whose copy would have travelled at least
// optimiseHops fewer hops than the one this node got makes that peer the
// parent (a GRAFT to it; the old parent is pruned when its copies turn
// redundant), at most once per graft timeout per source. Without it a tree keeps the links that first
// delivered each source's messages, and on a random overlay of 20 nodes
// those reached 14 hops.
type parent struct {
	peer  string
	at    time.Time // the parent's latest first copy
	since time.Time // when it became the parent
	late  int       // the parent's duplicates in a row since (it lost the race)
}

// optimiseHops is how many hops shorter an announcer's path must be for
// it to replace the parent.
const optimiseHops = 2

// parentSwitch is how many races in a row the parent must lose to one
// faster eager path before that path replaces it.
const parentSwitch = 4

// firstCopy records that the first copy of a message from source src came
// from peer from by eager push or repair.
func (n *Node) firstCopy(now time.Time, src, from string) {
	par := n.parents[src]
	switch {
	case par == nil:
		par = &parent{}
		n.parents[src] = par
	case par.peer == from:
		par.at, par.late = now, 0
		return
	case now.Sub(par.at) < n.graftTimeout():
		return // a faster path this once: the parent stays
	}
	n.adopt(now, par, src, from)
}

// adopt makes from the parent of source src. from need not be a
// neighbour (links may be one-way).
func (n *Node) adopt(now time.Time, par *parent, src, from string) {
	par.peer, par.at, par.since, par.late = from, now, now, 0
	if p := n.peers[from]; p != nil {
		p.shared = false // an upstream link: new sources push on it
	}
}

// optimise makes announcer from the parent of source k.Node when its copy
// of message seq would have arrived with hops, at least optimiseHops fewer
// than this node's: a GRAFT of that message to from makes this node eager
// there (the answer is one duplicate).
func (n *Node) optimise(now time.Time, from string, k SeqKey, seq uint64, hops uint32) []Out {
	if hops == 0 {
		return nil
	}
	par := n.parents[k.Node]
	if par == nil || par.peer == from || now.Sub(par.since) < n.graftTimeout() {
		return nil
	}
	m := n.store.get(k, seq)
	if m == nil || m.hops < hops+optimiseHops+1 { // m.hops is the arrival's plus one
		return nil
	}
	n.counters.TreeSwaps++
	// Make before break: the old parent is not pruned here but when its
	// copies turn redundant, once the new parent's arrive first; pruning
	// it at once left a gap (messages neither parent pushed) that only
	// grafts closed, hundreds of milliseconds later.
	n.adopt(now, par, k.Node, from)
	return []Out{{Peer: from, Frame: Frame{Kind: FrameGraft, Range: &pb.SeqRange{Node: k.Node, Epoch: k.Epoch, First: seq, Last: seq}}}}
}

// redundant reports whether an eager duplicate of a message from source src,
// sent by from, should be pruned; e is the message's hot state (nil if it
// expired).
func (n *Node) redundant(now time.Time, src, from string, e *Entry) bool {
	par := n.parents[src]
	if par == nil || par.peer != from {
		return true
	}
	// The parent lost the race. Replace it when it keeps losing to the
	// same faster path.
	winner := ""
	if e != nil && e.FirstVia == ViaEager {
		winner = e.FirstFrom
	}
	if winner == "" || winner == from {
		return false
	}
	if par.late++; par.late < parentSwitch {
		return false
	}
	n.counters.ParentSwitches++
	n.adopt(now, par, src, winner)
	return true
}

// PeerKind returns how neighbour id is sent to.
func (n *Node) PeerKindOf(id string) (PeerKind, bool) {
	p := n.peers[id]
	if p == nil {
		return 0, false
	}
	return p.kind, true
}

// Parent returns this node's parent in source src's tree: the peer whose
// eager copies of src's messages it keeps ("" when it has none).
func (n *Node) Parent(src string) string {
	if par := n.parents[src]; par != nil {
		return par.peer
	}
	return ""
}

// LazySources returns how many sources' messages stream neighbour id gets
// announced rather than pushed (for Stats).
func (n *Node) LazySources(id string) int {
	k := 0
	if p := n.peers[id]; p != nil {
		for _, l := range p.lazy {
			if l {
				k++
			}
		}
	}
	return k
}

// maxSequences bounds the sequences a node tracks: announcements of new
// sequences past it are ignored (a peer cannot grow the state without
// bound by inventing sequences); messages still create theirs.
const maxSequences = 1 << 16

// track returns the tracker of k, creating it. A tracker made again for
// a retired sequence starts with the prefix it held: those numbers are
// neither announced as missing nor grafted.
func (n *Node) track(now time.Time, k SeqKey) *seqTrack {
	t := n.seqs[k]
	if t == nil {
		t = newSeqTrack(now)
		if r, ok := n.retired[k]; ok {
			t.contiguous, t.max = r.upto, r.upto
		}
		n.seqs[k] = t
	}
	return t
}

// retiredKeep is how many LongTTLs a retired sequence's prefix is kept.
// A copy can arrive after its id is forgotten (LongTTL after the first)
// only from a node that got the message about that late itself and
// stores it from then on, for another LongTTL; six covers a chain of
// such nodes, at a few dozen bytes per sequence (at most maxSequences).
const retiredKeep = 6

// retiredSeq is the prefix 1..upto of a sequence that was forgotten at.
type retiredSeq struct {
	upto uint64
	at   time.Time
}

type retiredAt struct {
	k  SeqKey
	at time.Time
}

// retire keeps the prefix a forgotten tracker held (see Node.retired).
func (n *Node) retire(now time.Time, k SeqKey, upto uint64) {
	if r, ok := n.retired[k]; ok {
		upto = max(upto, r.upto)
	}
	if upto == 0 {
		return
	}
	n.retired[k] = retiredSeq{upto: upto, at: now}
	n.retiredQ = append(n.retiredQ, retiredAt{k, now})
}

// numberReceived reports whether msg's number arrived here before: its
// sequence's tracker holds it (seqTrack.received), or the sequence was
// retired holding it. Such a copy is a duplicate even when its id is no
// longer remembered (evicted past MaxSeen, or older than LongTTL).
//
// Sequence fields are set on the way and no signature covers them, so a
// number alone is not trusted against a message that claims it falsely:
// when the store holds the number under another id, msg is not a copy of
// it (it is judged by its id, as before numbers de-duplicated), so that a
// forged or buggy claim to a number cannot suppress the real message.
func (n *Node) numberReceived(msg *pb.GossipMessage) bool {
	k, seq := keyOf(msg)
	if seq == 0 || k.Node == "" {
		return false
	}
	if t := n.seqs[k]; t != nil {
		if !t.received(seq) {
			return false
		}
	} else if r, ok := n.retired[k]; !ok || seq > r.upto {
		return false
	}
	m := n.store.get(k, seq)
	return m == nil || m.hash == msg.GetHash()
}

// expireRetired drops retired prefixes older than retiredKeep × LongTTL,
// and the oldest past maxSequences.
func (n *Node) expireRetired(now time.Time) {
	keep := time.Duration(retiredKeep) * n.cfg.LongTTL
	i := 0
	for ; i < len(n.retiredQ); i++ {
		q := n.retiredQ[i]
		if now.Sub(q.at) < keep && len(n.retired) <= maxSequences {
			break
		}
		if r, ok := n.retired[q.k]; ok && r.at.Equal(q.at) { // not retired again since
			delete(n.retired, q.k)
		}
	}
	if i > 0 {
		n.retiredQ = append(n.retiredQ[:0], n.retiredQ[i:]...)
	}
}

func keyOf(m *pb.GossipMessage) (SeqKey, uint64) {
	return SeqKey{Node: m.GetSeqNode(), Epoch: m.GetSeqEpoch()}, m.GetSeq()
}

// HandlePrune records that stream neighbour from wants lazy push for the
// messages of the given sources.
func (n *Node) HandlePrune(from string, sources []string) {
	p := n.peers[from]
	if p == nil || p.kind != KindStream {
		return
	}
	for _, src := range sources {
		if src == "" || len(src) > n.cfg.MaxHashBytes {
			n.counters.Invalid++
			continue
		}
		n.counters.PrunesReceived++
		p.setLazy(src, true)
	}
}

// HandleIHave records announcements from peer from: numbers this node
// lacks are requested from an announcer if they have not arrived
// GraftTimeout later (see Grafts). An announcement of a message this node
// holds may shorten the tree (optimise); the frames that does are
// returned.
func (n *Node) HandleIHave(now time.Time, from string, ranges []*pb.SeqRange) []Out {
	var out []Out
	for _, r := range ranges {
		if !validRange(n.cfg, r) {
			n.counters.Invalid++
			continue
		}
		n.counters.IHavesReceived += r.GetLast() - r.GetFirst() + 1
		k := SeqKey{Node: r.GetNode(), Epoch: r.GetEpoch()}
		n.holds(from, k, r.GetFirst(), r.GetLast()) // an announcer holds what it announces
		if _, known := n.seqs[k]; !known && len(n.seqs) >= maxSequences {
			n.counters.Invalid++
			continue
		}
		t := n.track(now, k)
		if t.has(r.GetLast()) {
			out = append(out, n.optimise(now, from, k, r.GetLast(), r.GetHops())...)
		}
		if r.GetLast() <= t.contiguous {
			continue
		}
		if t.hasAll(0, r.GetLast()) { // nothing missing (checked without building ranges: one per announcement)
			continue
		}
		// Numbers announced together are waited for together: a later
		// announcement gets its own deadline, so a graft never asks for
		// numbers announced less than GraftTimeout ago (most of them are
		// still on their way through the tree).
		if l := len(t.pend); l > 0 && r.GetLast() <= t.pend[l-1].upto {
			if e := t.pend[l-1]; !slices.Contains(e.peers, from) && len(e.peers) < maxAnnouncers {
				e.peers = append(e.peers, from)
			}
			continue
		}
		if len(t.pend) >= maxPending {
			e := t.pend[len(t.pend)-1] // merge into the newest rather than grow
			e.upto = r.GetLast()
			continue
		}
		e := &pendGraft{upto: r.GetLast(), deadline: now.Add(n.graftTimeout()), peers: []string{from}}
		t.pend = append(t.pend, e)
		n.pending[k] = true
		if n.parents[k.Node] == nil {
			// No eager copy of this source has reached this node yet: its
			// tree is young and may not reach here at all (lazyFor), so
			// waiting a graft timeout for a copy would most likely wait
			// for nothing. Graft soon; the answer makes the announcer this
			// node's parent, so this happens about once per source.
			n.counters.GraftsYoung++
			e.deadline = now.Add(n.youngGraftTimeout())
		}
		if n.graftDue.IsZero() || e.deadline.Before(n.graftDue) {
			n.graftDue = e.deadline
		}
	}
	n.store.evict(n.holders.need)
	return out
}

// maxPending bounds the pending announcements per sequence.
const maxPending = 256

// graftTimeout is how long an announced message may take to arrive:
// GraftTimeout, or twice the current hop latency (the neighbours' smoothed
// round trip, which grows with their queues) when that is longer, so that
// an overloaded node does not graft copies that are merely queued — extra
// copies that would load it further — capped at ten times GraftTimeout.
func (n *Node) graftTimeout() time.Duration {
	return min(max(n.cfg.GraftTimeout, 2*n.st.HopLatency()), 10*n.cfg.GraftTimeout)
}

// youngGraftTimeout is how long a node with no parent for a source waits
// for an announced message of that source before grafting it: a tenth of
// the graft timeout, time for an eager copy that is merely a little
// behind the announcement. (The hop latency is no measure of that on a
// quiet link, where the ACKs that time it wait for a flush.) Measured at
// N = 50 in the quick bench suite, p99 to every node at 50 msg/s: 40–46 ms
// at a tenth, 30–40 ms at a fortieth, 53–91 ms at twice the hop latency,
// 254–280 ms at the full graft timeout; grafting at once costs copies
// where sources publish about once (TestPlumtreeVersusPush: 2.85 per
// delivery against 2.15).
func (n *Node) youngGraftTimeout() time.Duration {
	return n.graftTimeout() / 10
}

// maxAnnouncers bounds the announcers remembered per pending graft.
const maxAnnouncers = 8

// maxGraftTries bounds the grafts per pending range before the node
// leaves the gap to anti-entropy.
const maxGraftTries = 8

// Grafts returns the requests due at now: for each sequence with numbers
// announced GraftTimeout ago and still missing, a GRAFT of those numbers
// to the next announcer. A request unanswered after another GraftTimeout
// goes to the next announcer.
func (n *Node) Grafts(now time.Time) []Out {
	var out []Out
	n.graftDue = time.Time{}
	for k := range n.pending {
		t := n.seqs[k]
		if t == nil || len(t.pend) == 0 {
			delete(n.pending, k)
			continue
		}
		keep := t.pend[:0]
		for _, e := range t.pend {
			if now.Before(e.deadline) {
				keep = append(keep, e)
				continue
			}
			miss := t.missing(k, e.upto, n.cfg.MaxGraft)
			if len(miss) == 0 || e.tries >= maxGraftTries {
				continue // received, or left to anti-entropy
			}
			if gt := n.graftTimeout(); now.Sub(t.advanced) < gt {
				// The sequence is still arriving: its contiguous prefix
				// grew less than a graft timeout ago. A source's messages
				// travel each tree path in order, so what is missing is
				// most likely queued behind what just arrived (or
				// reordered by a moment between two paths), and a graft
				// now would only add copies to a busy path: under load
				// such repairs outnumbered the tree's own copies. Wait
				// until the prefix stalls for a graft timeout; a lost
				// message stalls it at once.
				n.counters.GraftsDelayed++
				e.deadline = t.advanced.Add(gt)
				keep = append(keep, e)
				continue
			}
			peer := e.peers[e.next%len(e.peers)]
			e.next++
			e.tries++
			e.deadline = now.Add(n.graftTimeout())
			keep = append(keep, e)
			for _, r := range miss {
				if slices.ContainsFunc(out, func(o Out) bool {
					return o.Peer == peer && o.Frame.Range.GetNode() == r.Node && o.Frame.Range.GetEpoch() == r.Epoch && o.Frame.Range.GetFirst() == r.First
				}) {
					continue // an older announcement asked for it already
				}
				out = append(out, Out{Peer: peer, Frame: Frame{Kind: FrameGraft, Range: r}})
				n.counters.GraftsSent += r.GetLast() - r.GetFirst() + 1
			}
		}
		clear(t.pend[len(keep):])
		t.pend = keep
		if len(keep) == 0 {
			delete(n.pending, k)
		}
		for _, e := range keep {
			if n.graftDue.IsZero() || e.deadline.Before(n.graftDue) {
				n.graftDue = e.deadline
			}
		}
	}
	// Map order is random; sort for reproducible runs.
	slices.SortFunc(out, func(a, b Out) int {
		if c := cmp.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Frame.Range.GetNode(), b.Frame.Range.GetNode()); c != 0 {
			return c
		}
		return cmp.Compare(a.Frame.Range.GetFirst(), b.Frame.Range.GetFirst())
	})
	return out
}

// GraftDue is when Grafts next has something to do (zero: nothing
// pending). It may be early, never late.
func (n *Node) GraftDue() time.Time { return n.graftDue }

// HandleGraft answers peer from's request: the requested messages this
// node still holds, in order. from becomes eager (if it is a stream
// neighbour): it asked because the tree did not reach it.
func (n *Node) HandleGraft(now time.Time, from string, ranges []*pb.SeqRange) []Frame {
	p := n.peers[from]
	if p != nil && p.kind != KindStream {
		p = nil
	}
	var out []Frame
	budget := n.cfg.MaxGraft
	for _, r := range ranges {
		if !validRange(n.cfg, r) {
			n.counters.Invalid++
			continue
		}
		k := SeqKey{Node: r.GetNode(), Epoch: r.GetEpoch()}
		if p != nil {
			p.setLazy(k.Node, false)
		}
		for s := r.GetFirst(); s <= r.GetLast() && budget > 0; s++ {
			budget--
			if m := n.store.get(k, s); m != nil {
				out = append(out, m.frame())
			}
		}
	}
	n.counters.GraftsServed += uint64(len(out))
	return out
}

// StoredMessages is the number of messages kept for repair.
func (n *Node) StoredMessages() int { return n.store.len() }

// Lookup returns the stored messages of range r (for a peer that turned
// out to speak only the unary RPC, to which announcements are useless).
func (n *Node) Lookup(r *pb.SeqRange) []Frame {
	var out []Frame
	k := SeqKey{Node: r.GetNode(), Epoch: r.GetEpoch()}
	for s := r.GetFirst(); s <= r.GetLast() && s-r.GetFirst() < uint64(n.cfg.MaxGraft); s++ {
		if m := n.store.get(k, s); m != nil {
			out = append(out, m.frame())
		}
	}
	return out
}

// validRange rejects ranges a correct peer never sends: empty ids,
// inverted or absurdly long ranges.
func validRange(c *Config, r *pb.SeqRange) bool {
	return r.GetNode() != "" && len(r.GetNode()) <= c.MaxHashBytes && r.GetFirst() >= 1 &&
		r.GetFirst() <= r.GetLast() && r.GetLast()-r.GetFirst() < 1<<20
}

// Digest summarises what the node holds, for anti-entropy.
func (n *Node) Digest(reply bool) *pb.Digest {
	d := &pb.Digest{Reply: reply, Sequences: make([]*pb.SeqSummary, 0, len(n.seqs))}
	for k, t := range n.seqs {
		if t.max == 0 {
			continue // heard of, nothing held
		}
		sum := t.summary(k, n.cfg.MaxDigestAbove)
		if sm := n.store.bySeq[k]; sm != nil {
			sum.Floor = sm.min
		}
		d.Sequences = append(d.Sequences, sum)
	}
	slices.SortFunc(d.Sequences, func(a, b *pb.SeqSummary) int {
		if c := cmp.Compare(a.GetNode(), b.GetNode()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetEpoch(), b.GetEpoch())
	})
	return d
}

// SyncTarget picks the stream neighbour to send the periodic digest to
// (uniformly at random), and the digest. ok is false without stream
// neighbours.
func (n *Node) SyncTarget() (peer string, f Frame, ok bool) {
	var cands []string
	for _, id := range n.order {
		if n.peers[id].kind == KindStream {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		return "", Frame{}, false
	}
	n.counters.DigestsSent++
	return cands[n.rnd.IntN(len(cands))], Frame{Kind: FrameDigest, Digest: n.Digest(false)}, true
}

// HandleDigest answers peer from's digest: the messages this node holds
// that the digest lacks (oldest first, at most MaxSyncMessages, only
// those accepted at least GraftTimeout ago: younger ones are probably in
// flight to the peer already), then, if the digest names messages this
// node lacks and is not itself a reply, this node's own digest.
func (n *Node) HandleDigest(now time.Time, from string, d *pb.Digest) []Frame {
	n.counters.DigestsReceived++
	if p := n.peers[from]; p != nil && p.kind == KindStream {
		n.recordFloors(from, d.GetSequences())
	}
	peer := make(map[SeqKey]*pb.SeqSummary, len(d.GetSequences()))
	lack := false
	for _, s := range d.GetSequences() {
		if s.GetNode() == "" || len(s.GetNode()) > n.cfg.MaxHashBytes {
			n.counters.Invalid++
			continue
		}
		normalizeSummary(s, n.cfg.MaxDigestAbove)
		k := SeqKey{Node: s.GetNode(), Epoch: s.GetEpoch()}
		peer[k] = s
		if b := n.bitOf(from); b != 0 {
			n.store.holdSummary(b, s)
		}
		t := n.seqs[k]
		var mine uint64
		if t != nil {
			mine = t.contiguous
		}
		if t == nil && (s.GetContiguous() > 0 || len(s.GetHeld()) > 0) || t != nil && t.lacks(s) {
			lack = true
			// A digest is also an announcement: what it names and this
			// node lacks is grafted from the peer if it has not arrived
			// GraftTimeout from now (by the peer's answer to this node's
			// own digest, or otherwise), in MaxGraft chunks — so a node far
			// behind catches up at the pace of grafts, not of sync rounds.
			var ann []*pb.SeqRange
			if s.GetContiguous() > mine {
				ann = append(ann, &pb.SeqRange{Node: k.Node, Epoch: k.Epoch, First: max(mine+1, s.GetFloor(), 1), Last: s.GetContiguous()})
			}
			for _, sp := range s.GetHeld() {
				if sp.GetLast() > mine && (t == nil || !t.hasAll(sp.GetFirst(), sp.GetLast())) {
					ann = append(ann, &pb.SeqRange{Node: k.Node, Epoch: k.Epoch, First: max(sp.GetFirst(), mine+1), Last: sp.GetLast()})
				}
			}
			if len(ann) > 0 && ann[0].First <= ann[0].Last {
				n.HandleIHave(now, from, ann) // no hops: nothing to optimise
			}
		}
	}
	// Gaps no current stream neighbour can still send are given up. Only
	// the sequences this digest lists can have had their lowest floor
	// raised by it (one it omits counts as unknown, which gives up nothing).
	for k, ps := range peer {
		t := n.seqs[k]
		if t == nil || ps.GetFloor() <= t.contiguous+1 && ps.GetFloor() != 0 {
			continue // this peer can still send everything this node lacks
		}
		if f := n.giveUpFloor(k); f > t.contiguous+1 {
			first := t.contiguous + 1
			n.skip(k, first, f-1, t.giveUpBelow(f), "no stream neighbour stores them any more (every one's store floor is above them)")
		}
	}
	n.store.evict(n.holders.need)
	var out []Frame
	if d.GetConnect() {
		// What the peer lacks it grafts from the announcers (this digest
		// is one for this node); no answer with messages.
		return nil
	}
	budget := n.cfg.MaxSyncMessages
	// Anti-entropy is the last resort: messages younger than a sync
	// round (or a graft timeout, if longer) are left to eager push and
	// grafts, which are probably delivering them already.
	cutoff := now.Add(-max(n.graftTimeout(), n.cfg.SyncInterval))
	keys := make([]SeqKey, 0, len(n.store.bySeq))
	for k := range n.store.bySeq {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b SeqKey) int {
		if c := cmp.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return cmp.Compare(a.Epoch, b.Epoch)
	})
	for _, k := range keys {
		sm := n.store.bySeq[k]
		ps := peer[k]
		// What the peer gave up and this node still has: late beats never.
		for _, r := range ps.GetSkipped() {
			for _, x := range sm.numbersFrom(r.GetFirst(), budget) {
				if x > r.GetLast() || budget == 0 {
					break
				}
				budget--
				out = append(out, sm.m[x].frame())
			}
		}
		lo := sm.min
		if ps != nil {
			lo = max(lo, ps.GetContiguous()+1)
		}
		// Numbers the peer holds are passed over: the work is bounded by
		// what this node stores of the sequence.
		for _, s := range sm.numbersFrom(lo, len(sm.m)) {
			if budget == 0 {
				break
			}
			m := sm.m[s]
			has, known := summaryHas(ps, s)
			if !known {
				break
			}
			if has || m.at.After(cutoff) {
				continue
			}
			budget--
			out = append(out, m.frame())
		}
	}
	n.counters.SyncSent += uint64(len(out))
	if lack && !d.GetReply() {
		n.counters.DigestsSent++
		out = append(out, Frame{Kind: FrameDigest, Digest: n.Digest(true)})
	}
	return out
}

// expireSeqs forgets sequences with nothing new for LongTTL and nothing
// pending, keeping the prefix each held (retire), and gives up holes past
// MaxHoles.
func (n *Node) expireSeqs(now time.Time) {
	n.expireRetired(now)
	expired := false
	for k, t := range n.seqs {
		if now.Sub(t.lastNew) >= n.cfg.LongTTL && len(t.pend) == 0 {
			delete(n.seqs, k)
			n.retire(now, k, t.contiguous)
			expired = true
			continue
		}
		for t.gaps() > n.cfg.MaxHoles {
			first, last, k2 := t.skipOldestGap()
			n.skip(k, first, last, k2, "more than MaxHoles gaps in the sequence")
		}
	}
	if !expired {
		return
	}
	// Per-source tree state of sources gone quiet goes with them.
	live := make(map[string]bool, len(n.seqs))
	for k := range n.seqs {
		live[k.Node] = true
	}
	for src := range n.parents {
		if !live[src] {
			delete(n.parents, src)
		}
	}
	for _, p := range n.peers {
		for src := range p.lazy {
			if !live[src] {
				delete(p.lazy, src)
			}
		}
	}
}
