package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Target is one forward: a neighbour's id and the endpoint to send to.
type Target struct {
	ID   string
	Addr string
}

// Result is what Receive decided about one incoming copy.
type Result struct {
	// Ack is the acknowledgement to return to the sender of a unary copy:
	// set by Receive whenever the error is nil; nil from ReceiveVia, whose
	// stream copies are acknowledged cumulatively, per envelope (building
	// one per copy cost an allocation per delivery).
	Ack *pb.GossipAck
	// Duplicate is true when this node had the message already.
	Duplicate bool
	// Fresh is true on the first receipt: the runtime hands the message to
	// the application exactly once, and sends Forward to every Target.
	Fresh bool
	// From and Hops are the received copy's sender (from_hash) and hop
	// count, for the application (Delivery.From, Delivery.Hops).
	From string
	Hops uint32
	// Via is how the copy came (a repair, a stream push, a unary call).
	Via Via
	// Forward is the copy to send on: from_hash set to this node, hops
	// incremented, origin filled in. It is shared by all targets and must
	// not be modified.
	Forward *pb.GossipMessage
	// Targets are the unary neighbours chosen by the Router (the seed's
	// push, with per-message ACKs and retries).
	Targets []Target
	// Out are the frames for stream neighbours: the message (Wire) for
	// the eager ones, an announcement for the lazy ones. Plumtree; see
	// plumtree.go.
	Out []Out
	// Wire is Forward serialized once, shared by every eager peer and
	// kept for repair. Set when the node has stream neighbours.
	Wire []byte
	// Payload is the payload's bytes inside Wire (nil without Wire): the
	// runtime hands the application a string over them, so that what
	// keeps the delivery (its log) and the store share one copy of each
	// payload instead of holding two. Like Wire, never modified.
	Payload []byte
	// Historic is set with Fresh on a first receipt that is not for the
	// application: published before this node's history horizon (see
	// History). Everything else about it is as for any first receipt.
	Historic bool
	// Prune is set on a redundant copy that arrived by eager push: the
	// source (seq node) whose messages its sender should push lazily; the
	// runtime answers the sender with a PRUNE of it. "" otherwise.
	Prune string
}

// Via says how a copy arrived; it decides whether a duplicate prunes.
type Via uint8

const (
	ViaUnary  Via = iota // PutMessageToClient, or a local publish
	ViaEager             // pushed eagerly on a stream
	ViaRepair            // answered a graft or a digest
)

// Counters are a node's cumulative protocol counters.
type Counters struct {
	Received   uint64 // valid copies received (first and duplicate)
	Delivered  uint64 // first receipts (handed to the application)
	Duplicates uint64 // copies suppressed as already seen
	Invalid    uint64 // messages rejected by validation
	Forwards   uint64 // forwards planned (one per message and target)
	Sent       uint64 // send attempts, retries included
	Acked      uint64 // attempts that got an ACK
	AckFailed  uint64 // attempts that failed or timed out
	Retries    uint64 // attempts after the first
	GaveUp     uint64 // forwards abandoned: attempts exhausted or a permanent error
	Forgotten  uint64 // first receipts undone by Forget (the application could not take them)
	Historic   uint64 // first receipts not delivered: published before the node's history horizon (History)
	Expired    uint64 // hot entries retired by decay

	// Streaming (Plumtree and anti-entropy).
	EagerSent       uint64 // message frames pushed eagerly
	IHavesSent      uint64 // messages announced lazily
	IHavesReceived  uint64 // message numbers announced to this node
	PrunesSent      uint64 // duplicates answered with PRUNE
	PrunesReceived  uint64 // neighbours that asked for lazy push
	GraftsSent      uint64 // message numbers requested by GRAFT
	GraftsServed    uint64 // messages sent in answer to a GRAFT
	GraftsDelayed   uint64 // due grafts put off because the sequence was still arriving in order
	GraftsYoung     uint64 // announcements waited for a tenth of the graft timeout: no eager copy of their source had reached this node
	ParentSwitches  uint64 // tree parents replaced by a path that kept winning the race
	TreeSwaps       uint64 // tree parents replaced by an announcer with a path at least two hops shorter
	DigestsSent     uint64 // anti-entropy digests sent (replies included)
	DigestsReceived uint64 // anti-entropy digests received
	SyncSent        uint64 // messages sent in answer to a digest
	Repaired        uint64 // first receipts that came by graft or digest answer
	HolesSkipped    uint64 // sequence numbers given up: no neighbour can send them (see Skip)
	// Store (store.go).
	StoreEvicted       uint64 // messages the byte bound evicted before their age
	StoreEvictedUnsafe uint64 // of those, ones a live stream neighbour was not known to hold (twice StoreBytes reached)
	StoreExpiredUnsafe uint64 // messages that reached LongTTL while a live stream neighbour was not known to hold them
	// Missing is a gauge: the numbers below the highest received of each
	// sequence that this node neither holds nor gave up (still wanted).
	// It drops to 0 once repair has caught up; one that stays up is a
	// loss in the making, visible before any give-up.
	Missing uint64
}

// Node is the protocol state of one gossip node. It is not safe for
// concurrent use.
type Node struct {
	self   string
	cfg    *Config
	st     *Storage
	router Router
	rnd    *rand.Rand

	sign   func(msg *pb.GossipMessage)                      // SetSigning; nil: messages are not signed
	verify func(now time.Time, msg *pb.GossipMessage) error // SetSigning; nil: nothing checked

	// outArena, set by Step for the length of one envelope, is where
	// ReceiveVia takes each fresh message's Out from (streamPeers slots
	// per message); nil otherwise (Receive, Publish allocate their own).
	outArena []Out

	neighbors map[string]string // id → endpoint
	peers     map[string]*peerState
	order     []string // neighbour ids, sorted, for deterministic candidate lists
	counters  Counters

	parents map[string]*parent // source (seq node) → this node's link into its tree
	epoch   uint64             // this run's sequence epoch (never 0)
	nextSeq uint64             // the last number this node gave a message
	seqs    map[SeqKey]*seqTrack
	// retired is, per sequence forgotten after LongTTL without news
	// (expireSeqs), the prefix it held, for retiredKeep × LongTTL:
	// numbers in it are duplicates even once their ids are forgotten
	// too, and a tracker made again for the sequence starts above it
	// (see retire). retiredQ is the order they were retired in.
	retired  map[SeqKey]retiredSeq
	retiredQ []retiredAt
	pending  map[SeqKey]bool // sequences with pending grafts
	graftDue time.Time       // the earliest pending graft's deadline (GraftDue)
	store    *msgStore
	holders  holderState // what the stream neighbours hold (holders.go)
	skips    []Skip      // give-ups not yet taken by the runtime

	prior   map[SeqKey][]Span // numbers a previous life handled (History.Handled)
	horizon time.Time         // History.Horizon
}

// NewNode returns the protocol state of node self. cfg must have been
// validated; st is the node's own Storage; seed makes its random choices
// reproducible.
func NewNode(self string, cfg *Config, st *Storage, router Router, seed uint64) *Node {
	if router == nil {
		router = RandomRouter{}
	}
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Node{
		self:      self,
		cfg:       cfg,
		st:        st,
		router:    router,
		rnd:       rnd,
		neighbors: make(map[string]string),
		peers:     make(map[string]*peerState),
		epoch:     rnd.Uint64() | 1,
		seqs:      make(map[SeqKey]*seqTrack),
		retired:   make(map[SeqKey]retiredSeq),
		pending:   make(map[SeqKey]bool),
		parents:   make(map[string]*parent),
		store:     newMsgStore(cfg.StoreBytes, cfg.LongTTL),
		holders:   newHolderState(),
	}
}

// ID is the node's id (its hash).
func (n *Node) ID() string { return n.self }

// Config is the node's validated configuration.
func (n *Node) Config() *Config { return n.cfg }

// Storage is the node's storage.
func (n *Node) Storage() *Storage { return n.st }

// Counters returns a copy of the node's counters.
func (n *Node) Counters() Counters {
	c := n.counters
	c.StoreEvicted, c.StoreEvictedUnsafe, c.StoreExpiredUnsafe = n.store.evicted, n.store.evictedUnsafe, n.store.expiredUnsafe
	for _, t := range n.seqs {
		c.Missing += t.max - t.contiguous - t.held()
	}
	return c
}

// AddNeighbor adds or re-addresses a neighbour. It refreshes the TTL.
func (n *Node) AddNeighbor(id, addr string) error {
	switch {
	case id == "" || addr == "":
		return ErrEmptyNeighbor
	case id == n.self:
		return fmt.Errorf("%w: %q", ErrSelfNeighbor, id)
	case len(id) > n.cfg.MaxHashBytes:
		return fmt.Errorf("%w: neighbour id is %d bytes, limit %d", ErrFieldTooLong, len(id), n.cfg.MaxHashBytes)
	}
	if _, ok := n.neighbors[id]; !ok {
		i, _ := slices.BinarySearch(n.order, id)
		n.order = slices.Insert(n.order, i, id)
		n.peers[id] = &peerState{}
	}
	n.neighbors[id] = addr
	n.st.AddPeer(id)
	return nil
}

// RemoveNeighbor removes a neighbour and its ACK statistics. It reports
// whether the neighbour was known.
func (n *Node) RemoveNeighbor(id string) bool {
	if _, ok := n.neighbors[id]; !ok {
		return false
	}
	n.releaseSlot(id)
	delete(n.neighbors, id)
	delete(n.peers, id)
	i, _ := slices.BinarySearch(n.order, id)
	n.order = slices.Delete(n.order, i, i+1)
	n.st.RemovePeer(id)
	return true
}

// Neighbors returns the neighbour ids and endpoints, sorted by id.
func (n *Node) Neighbors() []Target {
	out := make([]Target, len(n.order))
	for i, id := range n.order {
		out[i] = Target{ID: id, Addr: n.neighbors[id]}
	}
	return out
}

// SetSigning turns signed messages on (gossip.WithSecurity with signing).
// sign is called on each message this node originates, once its origin
// and created time are set, to add the origin's signature; verify checks
// each fresh copy that has an origin (never a duplicate: a replayed id
// stays a duplicate) before anything is recorded, and its error rejects
// the copy (counted in Invalid). Both are pure computations on the message
// (cryptography only) and are called under the owner's lock. Call it
// before the first Receive.
func (n *Node) SetSigning(sign func(msg *pb.GossipMessage), verify func(now time.Time, msg *pb.GossipMessage) error) {
	n.sign, n.verify = sign, verify
}

// Receive handles one copy of a message, from a neighbour, a client, or
// the local application (the seed's PutMessageToClient). It validates,
// de-duplicates, records and chooses targets; it sends nothing.
//
// The origin of a message is the first node that accepts it: when msg has
// no origin, this node becomes it. from_hash is the previous hop; it may be
// empty or unknown (an external client).
func (n *Node) Receive(now time.Time, msg *pb.GossipMessage) (Result, error) {
	res, err := n.ReceiveVia(now, msg, ViaUnary)
	if err == nil {
		res.Ack = &pb.GossipAck{Hash: msg.GetHash(), From: n.self, Duplicate: res.Duplicate}
	}
	return res, err
}

// streamPeers is how many neighbours are stream peers.
func (n *Node) streamPeers() int {
	k := 0
	for _, p := range n.peers {
		if p.kind == KindStream {
			k++
		}
	}
	return k
}

// ReceiveVia is Receive for a copy that arrived as via says.
func (n *Node) ReceiveVia(now time.Time, msg *pb.GossipMessage, via Via) (Result, error) {
	if err := ValidateMessage(n.cfg, msg); err != nil {
		n.counters.Invalid++
		return Result{}, err
	}
	n.counters.Received++
	// A duplicate: its id is known, a previous life handled its number,
	// or its number arrived before (its id evicted or expired since: see
	// numberReceived).
	if n.st.Seen(now, msg.GetHash()) || n.priorHas(msg) || n.numberReceived(msg) {
		n.counters.Duplicates++
		if e := n.st.Active(msg.GetHash()); e != nil {
			e.Copies++
		}
		if k, seq := keyOf(msg); seq != 0 && k.Node != "" {
			n.track(now, k).add(seq, now)
			n.holds(msg.GetFromHash(), k, seq, seq) // the sender has it
		}
		res := Result{Duplicate: true}
		e := n.st.Active(msg.GetHash())
		from, src := msg.GetFromHash(), msg.GetSeqNode()
		if via == ViaEager && from != "" && src != "" && (e == nil || e.FirstVia == ViaEager) && n.redundant(now, src, from, e) {
			// A redundant eager copy: its sender is told to push this
			// source's messages to this node lazily (PRUNE). Not when the
			// first copy was a repair: then the eager copy is the tree's
			// own, merely slower than the graft. The sender need not be a
			// neighbour of this node (links may be one-way): it is told
			// all the same. Only that direction of the link is pruned:
			// see parent.
			res.Prune = src
			n.counters.PrunesSent++
		}
		return res, nil
	}
	if n.verify != nil && msg.GetOrigin() != "" {
		if err := n.verify(now, msg); err != nil {
			n.counters.Invalid++
			return Result{}, err
		}
	}
	if via == ViaRepair {
		n.counters.Repaired++
	}
	if via != ViaUnary && msg.GetSeqNode() != "" && msg.GetFromHash() != "" {
		n.firstCopy(now, msg.GetSeqNode(), msg.GetFromHash())
	}
	historic := n.historic(msg)
	if historic {
		n.counters.Historic++
	} else {
		n.counters.Delivered++
	}

	origin := msg.GetOrigin()
	if origin == "" {
		origin = n.self
	}
	e := &Entry{Hash: msg.GetHash(), Origin: origin, FirstFrom: msg.GetFromHash(), Hops: msg.GetHops(), FirstVia: via}
	n.st.Insert(now, e)

	fwd := &pb.GossipMessage{
		Hash:            msg.GetHash(),
		FromHash:        n.self,
		Payload:         msg.GetPayload(),
		BinaryPayload:   msg.GetBinaryPayload(),
		Origin:          origin,
		Hops:            min(msg.GetHops(), math.MaxUint32-1) + 1, // saturate, never wrap to 0
		CreatedUnixNano: msg.GetCreatedUnixNano(),
		Trace:           msg.GetTrace(),
	}
	fwd.Signature, fwd.OriginCertificate = msg.GetSignature(), msg.GetOriginCertificate() // set by the origin, never changed
	if fwd.CreatedUnixNano == 0 && origin == n.self {
		fwd.CreatedUnixNano = now.UnixNano()
	}
	if n.sign != nil && origin == n.self && msg.GetOrigin() == "" {
		n.sign(fwd)
	}
	key, seq := keyOf(msg)
	if seq == 0 || key.Node == "" {
		// The first streaming node to accept a message numbers it.
		n.nextSeq++
		key, seq = SeqKey{Node: n.self, Epoch: n.epoch}, n.nextSeq
	}
	fwd.SeqNode, fwd.SeqEpoch, fwd.Seq = key.Node, key.Epoch, seq
	t := n.track(now, key)
	t.add(seq, now)
	t.unforget(seq)

	res := Result{Fresh: true, Historic: historic, Forward: fwd, From: msg.GetFromHash(), Hops: msg.GetHops(), Via: via}
	var candidates []string // unary neighbours; allocated only when there are some
	streams := 0
	for _, id := range n.order {
		if n.peers[id].kind == KindStream {
			streams++
			continue
		}
		if id != msg.GetFromHash() && id != origin {
			if candidates == nil {
				candidates = make([]string, 0, len(n.order)-streams)
			}
			candidates = append(candidates, id)
		}
	}
	if streams > 0 {
		wire, err := proto.Marshal(fwd)
		if err != nil {
			panic("core: marshal of a validated message failed: " + err.Error()) // broken invariant
		}
		res.Wire, res.Payload = wire, payloadIn(wire)
		// The stored message and the range its frames share are allocated
		// together: one allocation per message instead of two.
		sr := &storedRange{msg: storedMsg{hash: fwd.Hash, key: key, seq: seq, wire: wire, at: now, hops: fwd.Hops}}
		n.store.put(&sr.msg, n.holders.need)
		n.holds(msg.GetFromHash(), key, seq, seq)
		n.holds(origin, key, seq, seq)
		if free := cap(n.outArena) - len(n.outArena); free >= streams {
			// At most one frame per stream peer: the full slice expression
			// keeps this result's appends out of the next one's part.
			l := len(n.outArena)
			res.Out, n.outArena = n.outArena[l:l:l+streams], n.outArena[:l+streams]
		} else {
			res.Out = make([]Out, 0, streams)
		}
		one := &sr.rng // shared, never modified
		one.Node, one.Epoch, one.First, one.Last, one.Hops = key.Node, key.Epoch, seq, seq, fwd.Hops
		var up string // the parent: messages flow from it, not to it
		if par := n.parents[key.Node]; par != nil {
			up = par.peer
		}
		for _, id := range n.order {
			p := n.peers[id]
			if p.kind != KindStream || id == msg.GetFromHash() {
				continue
			}
			if id == origin {
				// The origin has it, but learns from the announcement that
				// this node does too: its store may then drop the message
				// (store.go), which it would otherwise keep until a
				// digest from this node said so.
				n.counters.IHavesSent++
				res.Out = append(res.Out, Out{Peer: id, Frame: Frame{Kind: FrameIHave, Range: one}})
				continue
			}
			// A copy that beat the parent's goes to the parent as an
			// announcement only: pushed, it would be a duplicate there,
			// and the parent's PRUNE would cut this node's own link into
			// the tree (links are pruned both ways).
			if lazy, first := p.lazyFor(key.Node); id == up || lazy {
				n.counters.IHavesSent++
				res.Out = append(res.Out, Out{Peer: id, Frame: Frame{Kind: FrameIHave, Range: one, Urgent: first && id != up}})
			} else {
				n.counters.EagerSent++
				// A message that reached this node by repair is late: its
				// copies do not prune (Repair) so that they cannot cut tree
				// links that were merely slower than the repair.
				res.Out = append(res.Out, Out{Peer: id, Frame: Frame{Kind: FrameMessage, Wire: wire, Hash: fwd.Hash, Repair: via == ViaRepair, Range: one}})
			}
		}
	}
	fanout := n.cfg.Fanout
	if fanout == FanoutAll {
		fanout = len(candidates)
	}
	chosen := n.router.SelectTargets(fwd, candidates, fanout, n.rnd)
	targets := make([]Target, 0, len(chosen))
	e.Targets = make([]TargetStatus, 0, len(chosen))
	for _, id := range chosen {
		if len(targets) == fanout {
			break // a Router returned more than fanout
		}
		addr, ok := n.neighbors[id]
		if !ok || id == n.self || id == msg.GetFromHash() || id == origin || slices.ContainsFunc(targets, func(t Target) bool { return t.ID == id }) {
			continue // a Router returned something it should not have
		}
		targets = append(targets, Target{ID: id, Addr: addr})
		e.Targets = append(e.Targets, TargetStatus{Peer: id})
	}
	n.counters.Forwards += uint64(len(targets))
	res.Targets = targets
	return res, nil
}

// Forget undoes the first receipt of msg (Result.Forward, so that its
// number is known): neither its id nor its number counts as seen, so the
// next copy counts as new. The runtime calls it when the application could
// not take a message, so that a sender's retry delivers it.
// The forwards Receive planned for it are taken back too (the runtime has
// not started them).
func (n *Node) Forget(msg *pb.GossipMessage) {
	hash := msg.GetHash()
	if e := n.st.Active(hash); e != nil {
		n.counters.Forwards -= uint64(len(e.Targets))
	}
	if k, seq := keyOf(msg); seq != 0 {
		if t := n.seqs[k]; t != nil {
			t.forget(seq)
		}
	}
	if n.st.Forget(hash) {
		n.counters.Forgotten++
		n.counters.Delivered--
	}
}

// AttemptStarted records that attempt (1-based) of a forward is being sent.
func (n *Node) AttemptStarted(t Target, attempt int) {
	n.counters.Sent++
	if attempt > 1 {
		n.counters.Retries++
	}
	n.st.RecordSent(t.ID)
}

// SendResult records the outcome of one attempt to forward hash to t, which
// took rtt. err is nil when ack is the neighbour's acknowledgement;
// retryable says whether the error is transient (timeouts, unavailable
// peers) rather than a rejection. It returns whether to try again and
// after how long: retries back off exponentially from RetryBackoff up to
// MaxRetryBackoff with ±20% jitter, and stop after MaxAttempts attempts.
func (n *Node) SendResult(now time.Time, t Target, hash string, attempt int, ack *pb.GossipAck, err error, retryable bool, rtt time.Duration) (retry bool, after time.Duration) {
	e := n.st.Active(hash)
	var ts *TargetStatus
	if e != nil {
		for i := range e.Targets {
			if e.Targets[i].Peer == t.ID {
				ts = &e.Targets[i]
				break
			}
		}
	}
	if ts != nil {
		ts.Attempts = attempt
	}
	if err == nil {
		n.counters.Acked++
		n.st.RecordAck(now, t.ID, rtt, ack.GetDuplicate())
		if ts != nil {
			ts.Acked = true
		}
		return false, 0
	}
	n.counters.AckFailed++
	n.st.RecordFailure(now, t.ID)
	if _, still := n.neighbors[t.ID]; !retryable || attempt >= n.cfg.MaxAttempts || !still {
		n.counters.GaveUp++
		if ts != nil {
			ts.GaveUp = true
		}
		return false, 0
	}
	return true, n.backoff(attempt)
}

// backoff is the delay after the given failed attempt: RetryBackoff ×
// 2^(attempt-1), capped at MaxRetryBackoff, with ±20% jitter.
func (n *Node) backoff(attempt int) time.Duration {
	d := n.cfg.RetryBackoff
	for i := 1; i < attempt && d < n.cfg.MaxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxRetryBackoff)
	jitter := 0.8 + 0.4*n.rnd.Float64()
	return time.Duration(float64(d) * jitter)
}

// Tick runs the periodic decay at now: expired hot state is retired, the
// long-TTL cache is cleaned, the TTL is recomputed.
func (n *Node) Tick(now time.Time) {
	n.counters.Expired += uint64(n.st.Expire(now))
	n.expireSeqs(now)
	n.expireGrace(now)
	n.store.expire(now, n.holders.need)
}
