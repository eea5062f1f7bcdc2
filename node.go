package gossip

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/grpc"

	"github.com/grpc-gossip/gossip/auth"
	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/durable"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// Delivery is one message handed to the application.
type Delivery struct {
	Hash       string    // the message id
	Origin     string    // the node that first accepted it
	From       string    // the neighbour (or client) the first copy came from
	Payload    string    // the application payload (any bytes: binary_payload when it is not UTF-8)
	Hops       uint32    // node-to-node hops the first copy travelled
	CreatedAt  time.Time // the origin's publish time; zero when unknown
	ReceivedAt time.Time // when this node accepted it
	// Missed is, on a Subscription, the number of messages it missed
	// (buffer full) since the previous one it received; 0 otherwise.
	Missed uint64
	// Offset is the message's place in this node's delivery log: 1, 2,
	// 3, … dense and monotonic, kept across restarts with WithDataDir.
	Offset uint64
}

// DeliveryHandler receives delivered messages; see WithDeliveryHandler.
type DeliveryHandler func(Delivery)

// GossipNode is one node: the seed's gRPC server and gossip runtime.
//
// It is safe for concurrent use. Its goroutines (the gRPC server, one per
// in-flight forward, the decay ticker, the delivery loop) are all stopped
// by Close.
type GossipNode struct {
	pbgrpc.UnimplementedGossipServer

	// Hash is the node's id, as in the seed (messages carry it in
	// from_hash and origin, ACKs in from).
	Hash string
	// Endpoint is the address other nodes reach this one at.
	Endpoint string

	cfg         Config
	logger      *slog.Logger
	storage     *LocalStorage
	factory     *GossipClientFactory
	transport   Transport
	deliver     DeliveryHandler
	serverOpts  []grpc.ServerOption
	sec         *auth.Security    // nil without WithSecurity
	limiter     *PublishLimiter   // nil without WithPublishLimit
	sublimits   *SubscriberLimits // nil without WithSubscriberLimits
	streamLimit *StreamLimit      // nil without WithStreamLimit
	peerBudget  *PeerBudget       // nil without WithPeerBudget
	startedAt   time.Time

	mu       sync.Mutex // guards core and peerDown
	core     *core.Node
	peerDown map[string]bool // neighbours whose last attempt failed (for log-once)

	ctx    context.Context // cancelled by Close; parent of every send
	cancel context.CancelFunc
	wg     sync.WaitGroup // forwards, ticker, server, in-flight PutMessageToClient calls
	sem    chan struct{}  // one slot per in-flight forward

	deliveries   chan pendingDelivery // accepted messages, in order, for the log (then the handler and subscriptions)
	deliverDone  chan struct{}
	dispatchQ    chan durable.Record // committed records, in offset order, for the handler and subscriptions
	dispatchDone chan struct{}

	// The delivery log (persist.go); committed hands its batches to the
	// handler and the subscriptions.
	dlog           *durable.Log
	incarnation    uint64
	restored       bool
	onStateFailure func(error)
	priorMembers   []string // the previous life's members (SavedMembers)
	membersMu      sync.Mutex
	savedMembers   []string // what saveMembers wrote last; guarded by membersMu

	subsMu        sync.Mutex
	subs          map[*Subscription]struct{} // nil once closed
	dispatched    uint64                     // the last offset handed to the live subscriptions
	subMissed     atomic.Uint64
	subBudget     int64         // WithSubscriberBytes; 0: no bound
	subBytes      atomic.Int64  // bytes accounted in live subscriptions' buffers (subscribe.go)
	slowConsumers atomic.Uint64 // subscriptions cut off as slow consumers

	ready atomic.Bool // joined a cluster, or marked ready as its first node

	closeMu sync.RWMutex // guards closed against wg.Add
	closed  bool

	srvMu      sync.Mutex
	server     *grpc.Server
	lis        net.Listener
	listenAddr string // set by SetListenAddr

	mship *membership // membership.go

	sendsDropped atomic.Uint64
	malformed    atomic.Uint64 // requests whose bytes did not decode

	// Observability (metrics.go): counted where a message is delivered.
	published       atomic.Uint64 // messages this node originated
	deliveredBytes  atomic.Uint64 // their payload bytes
	deliveryLatency histogram     // origin's created time → delivery here, ns
	deliveryHops    histogram     // hops of the first copy
	watchState                    // watch.go
	traceState                    // trace.go

	// The streaming transport (stream.go, link.go); streaming is false
	// when Config.DisableStreaming is set.
	streaming bool
	linkSet
	qtotal    *queueTotal
	sc        streamCounters
	congested atomic.Bool  // the core's store is congested (core.Node.Congested), as of the last step
	busyNs    atomic.Int64 // until when (unix ns) publishers wait for a congestion: this node's or one reported by a peer
	room      roomSignal   // closed when the congestion ends

	graftKick  chan struct{} // streamLoop: the core has a graft due earlier than armed
	graftArmed atomic.Int64  // when streamLoop's graft timer fires (unix ns); 0: not armed
	lazyKick   chan struct{} // streamLoop: lazy frames are queued somewhere
}

// NewGossipNode creates a node as the seed does. storage, router, logger
// and clientFactory may be nil (each node then gets its own storage, the
// random router, a discarding logger and a factory it owns and releases
// in Close). A storage, router, logger or factory passed in may be shared
// by many nodes; the caller keeps ownership of a factory it passes.
//
// It panics if the arguments are invalid (an empty selfHash, an invalid
// Config, a storage that already holds a live node with the same id): use
// New to get an error instead.
func NewGossipNode(selfHash, endpoint string, storage *LocalStorage, router Router, logger *slog.Logger, clientFactory *GossipClientFactory, opts ...Option) *GossipNode {
	n, err := newNode(selfHash, endpoint, storage, router, logger, clientFactory, opts)
	if err != nil {
		panic(err)
	}
	return n
}

// New creates a node with the given id and endpoint; defaults as in
// NewGossipNode. It returns an error for invalid arguments.
func New(selfHash, endpoint string, storage *LocalStorage, router Router, logger *slog.Logger, clientFactory *GossipClientFactory, opts ...Option) (*GossipNode, error) {
	return newNode(selfHash, endpoint, storage, router, logger, clientFactory, opts)
}

func newNode(selfHash, endpoint string, storage *LocalStorage, router Router, logger *slog.Logger, factory *GossipClientFactory, opts []Option) (*GossipNode, error) {
	var o nodeOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	cfg := o.cfg
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if selfHash == "" {
		return nil, errors.New("gossip: NewGossipNode: empty node id (selfHash)")
	}
	if len(selfHash) > cfg.MaxHashBytes {
		return nil, fmt.Errorf("gossip: NewGossipNode: node id is %d bytes, limit %d", len(selfHash), cfg.MaxHashBytes)
	}
	if storage == nil {
		storage = NewLocalStorage()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	transport := o.transport
	if transport == nil {
		owned := factory == nil
		if owned {
			factory = NewGossipClientFactory()
		}
		transport = &grpcTransport{factory: factory, owned: owned}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	h := fnv.New64a()
	h.Write([]byte(selfHash))
	seed ^= h.Sum64()

	cc := cfg.core()
	if err := cc.Validate(); err != nil { // fills the core-only fields (MaxGraft, MaxSyncMessages, …)
		return nil, fmt.Errorf("gossip: invalid config: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &GossipNode{
		Hash:        selfHash,
		Endpoint:    endpoint,
		cfg:         cfg,
		logger:      logger, // wrapped below, for watchers
		storage:     storage,
		factory:     factory,
		transport:   transport,
		deliver:     o.deliver,
		serverOpts:  o.serverOpts,
		sec:         o.sec,
		limiter:     o.limiter,
		sublimits:   o.sublimits,
		subBudget:   o.subBytes,
		streamLimit: o.streamLimit,
		peerBudget:  o.peerBudget,
		startedAt:   time.Now(),
		peerDown:    make(map[string]bool),
		ctx:         ctx,
		cancel:      cancel,
		sem:         make(chan struct{}, cfg.MaxInflightSends),
		subs:        make(map[*Subscription]struct{}),
		qtotal:      newQueueTotal(cfg.MaxQueuedBytes),

		deliveryLatency: newHistogram(deliveryLatencyBounds),
		deliveryHops:    newHistogram(deliveryHopsBounds),
	}
	n.logger = slog.New(&watchHandler{inner: logger.Handler(), n: n}).With("node", selfHash)
	n.links = make(map[string]*link)
	n.inbound = make(map[string]map[*conn]struct{})
	n.refusedBy = make(map[string]bool)
	n.graftKick, n.lazyKick = make(chan struct{}, 1), make(chan struct{}, 1)
	n.receipts = make(chan outReceipt, receiptQueue)
	n.streaming = !cfg.DisableStreaming
	n.core = core.NewNode(selfHash, &cc, core.NewStorage(&cc), router, seed)
	if o.sec != nil && o.sec.Signing() {
		sec, window := o.sec, cfg.LongTTL
		n.core.SetSigning(sec.SignMessage, func(now time.Time, m *pb.GossipMessage) error { return sec.VerifyMessage(now, m, window) })
	}
	var err error
	if n.mship, err = newMembership(n, o.mship); err != nil {
		cancel()
		return nil, err
	}
	if err := storage.attach(n); err != nil {
		cancel()
		return nil, err
	}
	n.dispatchQ, n.dispatchDone = make(chan durable.Record), make(chan struct{})
	if err := n.openLog(o.persist); err != nil {
		storage.detach(n)
		cancel()
		return nil, err
	}
	// The delivery loop holds one message past the channel (blocked on the
	// dispatcher while the handler runs): DeliveryBuffer in all, as when
	// the loop ran the handler itself.
	n.deliveries = make(chan pendingDelivery, cfg.DeliveryBuffer-1)
	n.deliverDone = make(chan struct{})
	go n.deliveryLoop()
	go n.dispatchLoop()
	n.wg.Add(1)
	go n.decayLoop()
	n.wg.Add(1)
	go n.receiptLoop()
	if n.streaming {
		n.wg.Add(1)
		go n.streamLoop()
	}
	return n, nil
}

// Config returns the node's validated configuration.
func (n *GossipNode) Config() Config { return n.cfg }

// AddNeighbor adds a neighbour (or changes its endpoint) at run time; it is
// safe while traffic flows. It refreshes the TTL estimate, which depends on
// the neighbours' latencies.
func (n *GossipNode) AddNeighbor(nodeHash, endpoint string) error {
	return n.addNeighbor(nodeHash, endpoint, false)
}

// addNeighbor is AddNeighbor; chosen is set when membership chose the
// neighbour (its stream's hello asks the neighbour to link back).
func (n *GossipNode) addNeighbor(nodeHash, endpoint string, chosen bool) error {
	n.mu.Lock()
	old := n.core.Neighbors()
	if err := n.core.AddNeighbor(nodeHash, endpoint); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("gossip: AddNeighbor: %w", err)
	}
	known := false
	for _, t := range old {
		if t.ID == nodeHash && t.Addr == endpoint {
			known = true
		}
	}
	if !known {
		defer n.emitWatch(WatchEvent{Kind: WatchNeighborAdded, Peer: nodeHash, Address: endpoint})
	}
	if !n.streaming {
		n.mu.Unlock()
		return nil
	}
	if known {
		n.mu.Unlock()
		return nil // unchanged: keep its stream (or its unary fallback)
	}
	n.core.SetPeerKind(nodeHash, core.KindStream)
	n.mu.Unlock()

	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	if n.closed {
		return nil
	}
	n.linksMu.Lock()
	prev := n.links[nodeHash]
	n.startLink(nodeHash, endpoint, chosen)
	n.linksMu.Unlock()
	if prev != nil {
		prev.stop() // re-addressed: the old stream's queue is dropped; repair covers it
	}
	return nil
}

// RemoveNeighbor removes a neighbour; forwards to it in flight stop
// retrying, and its stream is closed. It reports whether the neighbour was
// known.
func (n *GossipNode) RemoveNeighbor(nodeHash string) bool {
	n.mu.Lock()
	delete(n.peerDown, nodeHash)
	ok := n.core.RemoveNeighbor(nodeHash)
	n.mu.Unlock()
	n.linksMu.Lock()
	l := n.links[nodeHash]
	delete(n.links, nodeHash)
	n.linksMu.Unlock()
	if l != nil {
		l.stop()
	}
	if ok {
		n.emitWatch(WatchEvent{Kind: WatchNeighborRemoved, Peer: nodeHash})
	}
	return ok
}

// Neighbors returns the neighbour map: id → endpoint.
func (n *GossipNode) Neighbors() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string)
	for _, t := range n.core.Neighbors() {
		out[t.ID] = t.Addr
	}
	return out
}

// PutMessageToClient is the seed's RPC entry point and the way to publish
// locally. It validates msg, suppresses it if already seen, records it,
// queues it for the application, and forwards it asynchronously to up to
// Fanout neighbours, never to the one it came from nor its origin. It
// returns the node's ACK (Duplicate set for a copy already seen).
//
// Errors wrap the package's sentinel errors and carry their gRPC code:
// ErrEmptyHash, ErrHashTooLong, ErrFieldTooLong (InvalidArgument),
// ErrPayloadTooLarge (ResourceExhausted), ErrClosed and ErrBusy
// (Unavailable). On error nothing was recorded.
//
// To publish, set Hash to a new unique id and FromHash to the node's Hash
// (or leave it empty); Origin, Hops and CreatedUnixNano are filled in.
// ctx bounds how long the call may wait when the node is saturated. A
// message published here (no origin yet) is acknowledged once it is in
// the node's delivery log — with WithDataDir, committed as its
// SyncPolicy says (docs/DESIGN.md §13); if the state cannot be written
// the error is ErrStateFailed (Unavailable), and the message may have
// been sent already. A message of a previous life, or a historic one
// (WithCatchUp), is acknowledged without being delivered.
func (n *GossipNode) PutMessageToClient(ctx context.Context, msg *pb.GossipMessage) (*pb.GossipAck, error) {
	n.closeMu.RLock()
	if n.closed {
		n.closeMu.RUnlock()
		return nil, asRPCError(ErrClosed)
	}
	n.wg.Add(1)
	n.closeMu.RUnlock()
	defer n.wg.Done()

	if err := n.checkPut(ctx, msg); err != nil {
		return nil, err
	}
	if msg.GetOrigin() == "" {
		if n.cfg.RefuseUntilReady && !n.ready.Load() {
			return nil, asRPCError(ErrNotReady)
		}
		if err := n.mship.checkPayload(len(msg.GetPayload()) + len(msg.GetBinaryPayload())); err != nil {
			return nil, asRPCError(err)
		}
	}
	if n.streaming && msg.GetOrigin() == "" {
		// A new message entering the network: wait while the node is
		// saturated (backpressure to the publisher).
		if err := n.waitForRoom(ctx); err != nil {
			return nil, asRPCError(err)
		}
	}
	now := time.Now()
	n.mu.Lock()
	res, err := n.core.Receive(now, msg)
	skips := n.afterStep(now)
	n.mu.Unlock()
	n.logSkips(skips)
	if err != nil {
		n.logger.Warn("rejected message", "hash", logID(msg.GetHash()), "from", logID(msg.GetFromHash()), "err", err)
		return nil, asRPCError(err)
	}
	if !res.Fresh {
		return res.Ack, nil
	}
	if res.Historic {
		n.markHistoric(res.Forward)
		n.dispatch(res.Out)
		n.forward(ctx, res.Targets, res.Forward)
		return res.Ack, nil
	}
	// A message published here is acknowledged once it is in the log
	// (with a data dir: on disk as the sync policy says), so that a
	// subscription from its offset finds it: see docs/DESIGN.md §13.
	var committed chan error
	if msg.GetOrigin() == "" {
		committed = make(chan error, 1)
	}
	if err := n.enqueue(ctx, res.Forward, res.Payload, msg.GetFromHash(), msg.GetHops(), res.Via, now, committed); err != nil {
		n.mu.Lock()
		n.core.Forget(res.Forward)
		n.mu.Unlock()
		return nil, asRPCError(err)
	}
	n.dispatch(res.Out)
	n.forward(ctx, res.Targets, res.Forward)
	if committed != nil {
		// Always answered: by the commit, or by the log's failure.
		if err := <-committed; err != nil {
			return nil, asRPCError(fmt.Errorf("%w: %w", ErrStateFailed, err))
		}
	}
	return res.Ack, nil
}

// enqueue hands a fresh message to the delivery loop, waiting while the
// queue is full until ctx or the node ends. wire is the payload's bytes
// inside the message's serialized form (core.Result.Payload; nil on a
// node without streams): the delivery's payload is a string over them.
func (n *GossipNode) enqueue(ctx context.Context, fwd *pb.GossipMessage, wire []byte, from string, hops uint32, via core.Via, now time.Time, committed chan error) error {
	d := Delivery{
		Hash: fwd.GetHash(), Origin: fwd.GetOrigin(), From: from, Payload: fwd.GetPayload(),
		Hops: hops, ReceivedAt: now,
	}
	switch b := fwd.GetBinaryPayload(); {
	case len(wire) > 0:
		// The serialized message is immutable (every eager peer and the
		// store share it), so the string may alias it: the delivery log
		// then keeps the store's copy of the payload instead of one of
		// its own (a 64 KiB payload was held twice), and a binary payload
		// is not copied again here.
		d.Payload = unsafe.String(unsafe.SliceData(wire), len(wire))
	case len(b) > 0:
		d.Payload = string(b)
	}
	if ns := fwd.GetCreatedUnixNano(); ns != 0 {
		d.CreatedAt = time.Unix(0, ns)
	}
	p := pendingDelivery{d: d, fwd: fwd, ack: committed}
	select {
	case n.deliveries <- p:
		n.delivered(fwd, from, hops, via, now)
		return nil
	default:
	}
	select {
	case n.deliveries <- p:
		n.delivered(fwd, from, hops, via, now)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	case <-n.ctx.Done():
		return ErrClosed
	}
}

// delivered counts a message enqueue handed to the delivery loop.
func (n *GossipNode) delivered(fwd *pb.GossipMessage, from string, hops uint32, via core.Via, now time.Time) {
	if fwd.GetTrace() {
		n.receipt(fwd, from, hops, via, now)
	}
	if fwd.GetOrigin() == n.Hash {
		n.published.Add(1)
	}
	n.deliveredBytes.Add(uint64(len(fwd.GetPayload()) + len(fwd.GetBinaryPayload())))
	n.observeDelivery(fwd.GetCreatedUnixNano(), hops, now)
}

// deliveryLoop appends every first receipt to the log, in order; the
// log hands them on (committed) once committed.
func (n *GossipNode) deliveryLoop() {
	defer close(n.deliverDone)
	for p := range n.deliveries {
		if _, err := n.dlog.Append(p.record()); err != nil && p.ack != nil {
			p.ack <- err
		}
	}
}

// forward starts one send loop per target. When MaxInflightSends forwards
// are in flight it waits for a slot until ctx ends; forwards that get none
// are counted as dropped.
func (n *GossipNode) forward(ctx context.Context, targets []core.Target, msg *pb.GossipMessage) {
	for i, t := range targets {
		select {
		case n.sem <- struct{}{}:
		default:
			select {
			case n.sem <- struct{}{}:
			case <-ctx.Done():
				n.dropSends(targets[i:], msg, ctx.Err())
				return
			case <-n.ctx.Done():
				return
			}
		}
		n.wg.Add(1)
		go n.sendLoop(t, msg)
	}
}

func (n *GossipNode) dropSends(targets []core.Target, msg *pb.GossipMessage, err error) {
	n.sendsDropped.Add(uint64(len(targets)))
	n.logger.Warn("forwards dropped: too many in flight", "hash", logID(msg.GetHash()), "targets", len(targets), "err", err)
}

// sendLoop sends msg to t until it is acknowledged, rejected, or the core
// says to give up; between attempts it waits the core's backoff.
func (n *GossipNode) sendLoop(t core.Target, msg *pb.GossipMessage) {
	defer n.wg.Done()
	defer func() { <-n.sem }()
	for attempt := 1; ; attempt++ {
		n.mu.Lock()
		n.core.AttemptStarted(t, attempt)
		n.mu.Unlock()

		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.AckTimeout)
		start := time.Now()
		ack, err := n.transport.Send(ctx, t.Addr, msg)
		rtt := time.Since(start)
		cancel()
		if n.ctx.Err() != nil {
			return // closing: the outcome no longer matters
		}
		if err == nil && ack.GetHash() != msg.GetHash() {
			err = fmt.Errorf("neighbour acknowledged %q instead of %q", logID(ack.GetHash()), logID(msg.GetHash()))
		}
		n.mu.Lock()
		retry, after := n.core.SendResult(time.Now(), t, msg.GetHash(), attempt, ack, err, retryable(err), rtt)
		n.logPeerTransition(t, err)
		n.mu.Unlock()
		if err != nil {
			n.logger.Debug("forward failed", "peer", t.ID, "hash", logID(msg.GetHash()), "attempt", attempt, "retry", retry, "err", err)
		}
		if !retry {
			return
		}
		timer := time.NewTimer(after)
		select {
		case <-timer.C:
		case <-n.ctx.Done():
			timer.Stop()
			return
		}
	}
}

// logPeerTransition logs once when a neighbour starts failing and once when
// it answers again, instead of once per failed message. n.mu is held.
func (n *GossipNode) logPeerTransition(t core.Target, err error) {
	switch down := n.peerDown[t.ID]; {
	case err != nil && !down:
		n.peerDown[t.ID] = true
		n.logger.Warn("neighbour not answering", "peer", t.ID, "endpoint", t.Addr, "err", err)
	case err == nil && down:
		delete(n.peerDown, t.ID)
		n.logger.Info("neighbour answering again", "peer", t.ID, "endpoint", t.Addr)
	}
}

func (n *GossipNode) decayLoop() {
	defer n.wg.Done()
	tk := time.NewTicker(n.cfg.DecayInterval)
	defer tk.Stop()
	for {
		select {
		case now := <-tk.C:
			n.mu.Lock()
			n.core.Tick(now)
			n.mu.Unlock()
			n.saveMembers()
		case <-n.ctx.Done():
			return
		}
	}
}

// Close stops the node: new calls fail with ErrClosed, the gRPC server
// stops (in-flight RPCs get ShutdownTimeout to finish), forwards in flight
// are cancelled, messages already queued are handed to the
// DeliveryHandler, and the transport (and a client factory the node
// created itself) is closed, and so are the subscriptions (after the
// messages queued for them). Every goroutine of the node has ended when
// Close returns. A second Close returns ErrClosed.
func (n *GossipNode) Close() error {
	n.closeMu.Lock()
	if n.closed {
		n.closeMu.Unlock()
		return ErrClosed
	}
	n.closed = true
	n.closeMu.Unlock()

	n.cancel()
	n.mship.stop() // membership goroutines end with the node context
	n.stopServer()
	n.wg.Wait()
	close(n.deliveries)
	<-n.deliverDone
	lerr := n.dlog.Close() // commits what is pending: the handler and subscriptions get it
	close(n.dispatchQ)
	<-n.dispatchDone
	n.closeSubscriptions()
	n.closeWatchers()
	n.storage.detach(n)
	return errors.Join(n.transport.Close(), lerr)
}

// NeighborStats is one row of the per-neighbour ACK statistics.
type NeighborStats struct {
	ID         string
	Endpoint   string
	Sent       uint64        // attempts, retries included
	Acked      uint64        // attempts acknowledged
	Failed     uint64        // attempts failed or timed out
	Duplicates uint64        // ACKs saying the neighbour already had the message
	LastRTT    time.Duration // round trip of the latest ACK
	SRTT       time.Duration // smoothed round trip; 0 before the first ACK
	LastAck    time.Time
	LastFail   time.Time
	Loss       float64 // smoothed failure ratio of attempts, 0..1
	// Transport is "stream" or "unary" (see Neighbor.transport in the
	// proto); for a stream neighbour Sent and Acked count messages.
	Transport   string
	LazySources int // stream neighbours: sources whose messages it gets announced, not pushed
	QueuedBytes int // stream neighbours: bytes queued for its stream
	// ProbeRTT is the round trip of membership's last answered direct
	// probe of the neighbour (0: none yet, or membership not running):
	// the network's RTT, whatever the transport.
	ProbeRTT time.Duration
}

// NeighborStats returns the per-neighbour ACK statistics, sorted by id.
func (n *GossipNode) NeighborStats() []NeighborStats {
	n.mu.Lock()
	addrs := make(map[string]string)
	for _, t := range n.core.Neighbors() {
		addrs[t.ID] = t.Addr
	}
	var out []NeighborStats
	for _, p := range n.core.Storage().Peers() {
		out = append(out, NeighborStats{
			ID: p.ID, Endpoint: addrs[p.ID], Sent: p.Sent, Acked: p.Acked, Failed: p.Failed,
			Duplicates: p.Duplicates, LastRTT: p.LastRTT, SRTT: p.SRTT, LastAck: p.LastAck,
			LastFail: p.LastFail, Loss: p.Loss, Transport: "unary", LazySources: n.core.LazySources(p.ID),
		})
		if k, _ := n.core.PeerKindOf(p.ID); k == core.KindStream {
			out[len(out)-1].Transport = "stream"
		}
	}
	n.mu.Unlock()
	n.linksMu.Lock() // after n.mu, never inside it (as Stats)
	queued := make(map[string]int, len(n.links))
	for id, l := range n.links {
		queued[id] = l.c.queuedBytes()
	}
	n.linksMu.Unlock()
	for i := range out {
		out[i].QueuedBytes = queued[out[i].ID]
		out[i].ProbeRTT = n.mship.probeRTTOf(out[i].ID)
	}
	return out
}

// seen reports whether the node remembers msgHash.
func (n *GossipNode) seen(msgHash string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Storage().Seen(time.Now(), msgHash)
}

// logID shortens an id for a log line: ids come from the network and may
// be up to MaxHashBytes long (or longer, when rejected for it).
func logID(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
