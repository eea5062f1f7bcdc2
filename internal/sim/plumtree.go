package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/topology"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// The Plumtree engine: what users run (the runtime's stream.go and
// link.go at the module root), with the runtime's goroutines and timers
// replaced by events on one queue.
//
// Every neighbour is a stream peer. A node opens one stream to each of
// its neighbours (a relation: opener → acceptor); the opener's end is a
// core.Stream with track=true (it keeps what it sent until acknowledged),
// the acceptor's end one with track=false, created when the opener's
// hello arrives. A node sends what it initiates for a peer on its own
// stream to it, or, when the peer is not its neighbour, on a stream the
// peer opened; it answers (Reply) on the stream the envelope came on.
//
// Envelopes are built by Stream.Next and handled at the receiver exactly
// as handleEnvelope does: core.Decode, Stream.Receive, Node.Step,
// Node.AckedBy; Withdraw applied to every stream to the peer; Reply
// frames pushed on the stream the envelope came on; the Out of each fresh
// result and of the step dispatched to their peers. Pushing an eager frame
// wakes the stream's writer, which runs at the same virtual time (plus
// Scenario.Proc) and sends everything queued as envelopes of at most
// batchBytes, each with its own one-way delay, in order on the stream;
// lazy frames (announcements, prunes, ACKs) wait for the next envelope or
// the flush every GraftTimeout/2.
//
// Loss: a lost envelope breaks its stream, both ends at once, and what is
// in flight on it either way is discarded — memnet's model (memnet/stream.go).
// The acceptor's end is drained; the opener re-dials after the runtime's
// backoff (50 ms, doubling to 5 s, ±20 %; back to 50 ms after a session
// whose hello was answered), calls Stream.Restart (the messages not
// acknowledged go first, as repairs) and sends a new hello. A crash breaks
// every stream of the crashed node; dialling a crashed node is refused at
// once (memnet: no handler at the address). memnet's flow-control window
// is not modelled: a writer is never blocked.
//
// Timers per node, as streamLoop and decayLoop run them, from a random
// start within the first 100 ms: Grafts every GraftTimeout/4 (dispatching
// what it returns), a flush of the lazy frames every second of those
// ticks, a digest (SyncTarget) every SyncInterval ±10 %, and Tick every
// Scenario.Tick.

// Runtime constants the engine reproduces (the root package's defaults).
const (
	streamQueueBytes = 8 << 20 // DefaultStreamQueueBytes: a stream's soft bound
	batchBytes       = 28 << 10
	linkBackoffMin   = int64(50 * time.Millisecond)
	linkBackoffMax   = int64(5 * time.Second)
	// maxRecvBytes is MaxRecvMsgSize with the default Config: what the
	// hello announces as the largest envelope a node accepts.
	maxRecvBytes = core.DefaultMaxPayloadBytes + 3*core.DefaultMaxHashBytes + 64<<10
)

// rel is one directed neighbour relation: the stream node from opened to
// its neighbour to, across sessions.
type rel struct {
	idx      int32
	from, to int32
	a        *core.Stream // the opener's end (track)
	b        *core.Stream // the acceptor's end; nil while no session is open there
	gen      uint32       // the session: events of older sessions are void
	up       bool         // the opener has a session open (it sent its hello)
	answered bool         // the acceptor's hello arrived in this session
	closed   bool         // the link was stopped (neighbour removed)
	chosen   bool         // membership chose the neighbour: the hello asks for a link back
	wake     bool         // the opener's writer was woken while no session was open
	writing  [2]bool      // a writer event is queued for side 0 (opener) / 1 (acceptor)
	dials    int
	backoff  int64
	last     [2]int64 // arrival of the newest envelope each way: streams are ordered
}

// end is the stream state of side 0 (the opener's) or 1 (the acceptor's).
func (r *rel) end(side uint8) *core.Stream {
	if side == 0 {
		return r.a
	}
	return r.b
}

// ptNode is the runtime's state of one node around its core.
type ptNode struct {
	links []int32 // relations this node opened: its neighbours' streams
	inb   []int32 // relations opened to this node (live ones)
	rnd   *rand.Rand
	ticks int
	start int64
}

// ptEngine is the state of one Plumtree run.
type ptEngine struct {
	sc    Scenario
	cfg   *core.Config
	ids   []string
	addrs []string
	nodes []*core.Node
	pn    []ptNode
	rels  []*rel

	q     pqueue
	seq   uint64
	now   int64
	end   int64
	net   *rand.Rand // loss and delay draws
	graft int64      // GraftTimeout/4

	crashed, willCrash []bool

	msgs   []message
	byHash map[string]int32
	recvAt [][]int64
	hops   [][]uint32
	copies []uint64 // payload copies of each message that reached a live node

	ov *overlay // membership (overlay.go); nil for static topologies

	st            StreamSummary
	events        uint64
	dupDeliveries uint64
	truncated     bool
	progress      func(time.Duration, uint64, int)
}

func (e *ptEngine) push(ev pevent) {
	ev.seq = e.seq
	e.seq++
	e.q.push(ev)
}

func (e *ptEngine) at() time.Time { return epoch.Add(time.Duration(e.now)) }

func (e *ptEngine) delay() int64 { return int64(e.sc.Latency.Sample(e.net)) }

// runPlumtree simulates a Plumtree scenario (validated).
func runPlumtree(sc Scenario, opt Options) (*Report, error) {
	wallStart := time.Now()
	var chosen [][]int32
	var g topology.Graph
	var err error
	if sc.Topology == TopoMembership {
		chosen, g = MembershipOverlay(sc.Nodes, sc.FanoutExtra, sc.Seed)
	} else if g, err = buildGraph(sc.Topology, sc.Nodes, sc.Degree, sc.FanoutExtra, sc.Seed); err != nil {
		return nil, err
	}
	pe := newEngine(sc, nil) // crashes, publishers and message ids, as for unary push
	cfg := pe.cfg
	cfg.Fanout = core.FanoutAll // no unary peers: every neighbour is a stream peer
	e := &ptEngine{
		sc: sc, cfg: cfg, ids: pe.ids, addrs: make([]string, sc.Nodes),
		net:     rand.New(rand.NewPCG(splitmix64(sc.Seed^11), splitmix64(sc.Seed^12))),
		crashed: pe.crashed, willCrash: pe.willCrash,
		msgs: pe.msgs, recvAt: pe.recvAt, hops: pe.hops,
		copies: make([]uint64, len(pe.msgs)), byHash: make(map[string]int32, len(pe.msgs)),
		graft: int64(max(cfg.GraftTimeout/4, time.Millisecond)), progress: opt.Progress,
	}
	for m, msg := range e.msgs {
		e.byHash[msg.hash] = int32(m)
	}
	for i := range e.addrs {
		e.addrs[i] = nodeAddr(i)
	}
	e.end = e.msgs[len(e.msgs)-1].at + int64(sc.Drain)
	if e.end > int64(sc.MaxTime) {
		e.end, e.truncated = int64(sc.MaxTime), true
	}

	e.nodes = make([]*core.Node, sc.Nodes)
	e.pn = make([]ptNode, sc.Nodes)
	start := rand.New(rand.NewPCG(splitmix64(sc.Seed^13), splitmix64(sc.Seed^14)))
	for i := range e.nodes {
		e.nodes[i] = core.NewNode(strings.Clone(e.ids[i]), e.cfg, core.NewStorage(e.cfg), nil, splitmix64(sc.Seed+uint64(i)+0x51))
		e.pn[i].rnd = rand.New(rand.NewPCG(splitmix64(sc.Seed^uint64(i)^0x7074), uint64(i)))
		e.pn[i].start = start.Int64N(int64(100 * time.Millisecond))
	}
	if chosen != nil {
		e.ov = newOverlay(e, chosen)
	} else {
		for i, nbrs := range g {
			for _, j := range nbrs {
				e.addNeighbor(int32(i), int32(j), false)
			}
		}
	}
	if e.ov != nil {
		if err := e.ov.start(); err != nil {
			return nil, err
		}
	}
	e.schedule()
	setupWall := time.Since(wallStart)

	runStart := time.Now()
	e.run()
	runWall := time.Since(runStart)
	e.q = nil

	r := e.report()
	r.Perf.SetupWall = setupWall
	r.Perf.RunWall = runWall
	r.Perf.Wall = time.Since(wallStart)
	r.Perf.Events = e.events
	if s := runWall.Seconds(); s > 0 {
		r.Perf.EventsPerSec = float64(e.events) / s
	}
	return r, nil
}

// schedule queues the nodes' timers, the crash, the publishes and the end.
func (e *ptEngine) schedule() {
	if e.sc.Crash > 0 {
		if e.sc.CrashAt == 0 {
			e.crash()
		} else {
			e.push(pevent{at: int64(e.sc.CrashAt), kind: pkCrash})
		}
	}
	for m, msg := range e.msgs {
		e.push(pevent{at: msg.at, kind: pkPublish, i: int32(m)})
	}
	for i := range e.pn {
		s := e.pn[i].start
		e.push(pevent{at: s + e.graft, kind: pkGraftTick, i: int32(i)})
		e.push(pevent{at: s + e.syncJitter(int32(i)), kind: pkSync, i: int32(i)})
		if e.sc.Tick > 0 {
			e.push(pevent{at: s + int64(e.sc.Tick), kind: pkDecay, i: int32(i)})
		}
	}
	e.push(pevent{at: e.end, kind: pkStop})
}

// syncJitter is SyncInterval ±10 %, as streamLoop draws it.
func (e *ptEngine) syncJitter(i int32) int64 {
	return int64(float64(e.cfg.SyncInterval) * (0.9 + 0.2*e.pn[i].rnd.Float64()))
}

// run processes events until the end of the run.
func (e *ptEngine) run() {
	for len(e.q) > 0 {
		ev := e.q.pop()
		e.now = ev.at
		e.events++
		if e.progress != nil && e.events&(1<<20-1) == 0 {
			e.progress(time.Duration(e.now), e.events, len(e.q))
		}
		switch ev.kind {
		case pkStop:
			return
		case pkPublish:
			e.publish(ev.i)
		case pkCrash:
			e.crash()
		case pkDial:
			e.dial(ev.i)
		case pkArrive:
			e.arrive(&ev)
		case pkWrite:
			e.write(ev.i, ev.dir, ev.gen)
		case pkGraftTick:
			e.graftTick(ev.i)
		case pkSync:
			if !e.crashed[ev.i] {
				if peer, f, ok := e.nodes[ev.i].SyncTarget(); ok {
					e.dispatch(ev.i, []core.Out{{Peer: peer, Frame: f}})
				}
				e.push(pevent{at: e.now + e.syncJitter(ev.i), kind: pkSync, i: ev.i})
			}
		case pkDecay:
			if !e.crashed[ev.i] {
				e.nodes[ev.i].Tick(e.at())
				e.push(pevent{at: e.now + int64(e.sc.Tick), kind: pkDecay, i: ev.i})
			}
		default:
			e.ov.handle(&ev)
		}
	}
}

// publish hands message m to its origin, as Publish does.
func (e *ptEngine) publish(m int32) {
	msg := e.msgs[m]
	o := msg.origin
	res, err := e.nodes[o].Receive(e.at(), &pb.GossipMessage{
		Hash:            msg.hash,
		FromHash:        e.ids[o],
		Payload:         payload,
		CreatedUnixNano: e.at().UnixNano(),
	})
	if err != nil || !res.Fresh {
		panic(fmt.Sprintf("sim: node %d did not accept its own new message: %v", o, err)) // broken invariant
	}
	e.recvAt[m][o] = e.now
	e.dispatch(o, res.Out)
}

// crash crashes the chosen nodes: every stream of theirs breaks.
func (e *ptEngine) crash() {
	for i, c := range e.willCrash {
		if !c || e.crashed[i] {
			continue
		}
		e.crashed[i] = true
		pn := &e.pn[i]
		for _, ri := range pn.links {
			e.breakRel(e.rels[ri])
		}
		for _, ri := range pn.inb {
			e.breakRel(e.rels[ri])
		}
	}
	if e.ov != nil {
		e.ov.crashed()
	}
}

// graftTick is streamLoop's graft ticker: due grafts, and every second
// tick a flush of the lazy frames.
func (e *ptEngine) graftTick(i int32) {
	if e.crashed[i] {
		return
	}
	e.dispatch(i, e.nodes[i].Grafts(e.at()))
	pn := &e.pn[i]
	if pn.ticks++; pn.ticks%2 == 0 {
		for _, ri := range pn.links {
			r := e.rels[ri]
			if r.a.Flush() {
				e.signal(ri, 0)
			}
		}
		for _, ri := range pn.inb {
			if r := e.rels[ri]; r.b != nil && r.b.Flush() {
				e.signal(ri, 1)
			}
		}
	}
	e.push(pevent{at: e.now + e.graft, kind: pkGraftTick, i: i})
}

// linkTo returns node i's own relation to j, or -1.
func (e *ptEngine) linkTo(i, j int32) int32 {
	for _, ri := range e.pn[i].links {
		if e.rels[ri].to == j {
			return ri
		}
	}
	return -1
}

// connTo is the runtime's connTo: the stream on which node i sends to
// peer j — its own link when j is its neighbour, else a stream j opened
// to it; ok is false when there is none (the frame is dropped).
func (e *ptEngine) connTo(i, j int32) (ri int32, side uint8, ok bool) {
	if ri := e.linkTo(i, j); ri >= 0 {
		return ri, 0, true
	}
	for _, ri := range e.pn[i].inb {
		if r := e.rels[ri]; r.from == j && r.b != nil {
			return ri, 1, true
		}
	}
	return 0, 0, false
}

// dispatch queues the core's frames for their peers.
func (e *ptEngine) dispatch(i int32, outs []core.Out) {
	for _, o := range outs {
		ri, side, ok := e.connTo(i, nodeIndex(o.Peer))
		if !ok {
			e.st.FramesDropped++
			continue
		}
		e.pushFrame(ri, side, o.Frame)
	}
}

// pushFrame queues f on one end of a stream, counting what became of it.
func (e *ptEngine) pushFrame(ri int32, side uint8, f core.Frame) {
	res, wake := e.rels[ri].end(side).Push(f)
	switch res {
	case core.Deferred:
		e.st.Deferred++
	case core.Dropped:
		e.st.FramesDropped++
	case core.Refused:
		e.st.Refused++
	}
	if wake {
		e.signal(ri, side)
	}
}

// signal wakes the writer of one end: it runs now (plus Proc) if a session
// is open, else the opener's wake-up waits for the next session.
func (e *ptEngine) signal(ri int32, side uint8) {
	r := e.rels[ri]
	if side == 0 && !r.up {
		r.wake = true
		return
	}
	if side == 1 && r.b == nil || r.writing[side] {
		return
	}
	r.writing[side] = true
	e.push(pevent{at: e.now + int64(e.sc.Proc), kind: pkWrite, i: ri, dir: side, gen: r.gen})
}

// write is the runtime's write: envelopes until the queue is empty.
func (e *ptEngine) write(ri int32, side uint8, gen uint32) {
	r := e.rels[ri]
	if r.gen != gen {
		return // the session broke meanwhile
	}
	r.writing[side] = false
	s := r.end(side)
	sender, peer := r.from, r.to
	if side == 1 {
		sender, peer = r.to, r.from
	}
	for {
		env, more, ok := s.Next(e.at(), batchBytes, time.Time{}) // congestion is not modelled: publishers never wait
		if !ok {
			return
		}
		if !e.send(ri, side, env) {
			if side == 0 && more {
				r.wake = true // the signal Next left for the frames still queued
			}
			return
		}
		if len(env.GetMessages())+len(env.GetRepairs()) > 0 {
			e.nodes[sender].SentTo(e.ids[peer], env)
		}
	}
}

// send puts env on relation ri's stream in direction dir (0: opener to
// acceptor); it reports false when the envelope was lost, which broke the
// stream.
func (e *ptEngine) send(ri int32, dir uint8, env *pb.Envelope) bool {
	r := e.rels[ri]
	e.st.EnvelopesSent++
	k := uint64(len(env.GetMessages()) + len(env.GetRepairs()))
	e.st.CopiesSent += k
	if e.sc.Loss > 0 && e.net.Float64() < e.sc.Loss {
		e.st.EnvelopesLost++
		e.breakRel(r)
		return false
	}
	at := max(e.now+e.delay(), r.last[dir])
	r.last[dir] = at
	e.push(pevent{at: at, kind: pkArrive, i: ri, dir: dir, gen: r.gen, env: env})
	return true
}

// breakRel breaks the current session of r, both ends: in-flight
// envelopes are void, the acceptor's end is drained, and the opener
// re-dials after its backoff (unless the link was stopped or the opener
// crashed).
func (e *ptEngine) breakRel(r *rel) {
	if !r.up && r.b == nil {
		return
	}
	e.st.StreamBreaks++
	r.gen++
	r.writing = [2]bool{}
	if r.b != nil {
		e.st.FramesDropped += uint64(len(r.b.Drain()))
		r.b = nil
	}
	if !r.up {
		return
	}
	r.up = false
	if r.answered && !e.crashed[r.from] {
		e.nodes[r.from].PeerUp(e.at(), e.ids[r.to], false)
	}
	if r.a.Len() > 0 {
		r.wake = true
	}
	if r.closed || e.crashed[r.from] {
		return
	}
	if r.answered {
		r.backoff = linkBackoffMin
	}
	e.redial(r)
}

// redial schedules the next dial of r after its backoff (±20 %), and
// doubles the backoff, as link.run does.
func (e *ptEngine) redial(r *rel) {
	d := int64(float64(r.backoff) * (0.8 + 0.4*e.pn[r.from].rnd.Float64()))
	r.backoff = min(2*r.backoff, linkBackoffMax)
	e.push(pevent{at: e.now + d, kind: pkDial, i: r.idx})
}

// dial is one session of link.run: open the stream, Restart, hello.
func (e *ptEngine) dial(ri int32) {
	r := e.rels[ri]
	if r.closed || r.up || e.crashed[r.from] {
		return
	}
	if r.dials++; r.dials > 1 {
		e.st.Reconnects++
	}
	if e.crashed[r.to] {
		e.st.DialsRefused++
		r.answered = false
		e.redial(r)
		return
	}
	r.gen++
	r.up, r.answered = true, false
	r.last = [2]int64{}
	resent := r.a.Restart()
	e.st.Resent += uint64(resent)
	hello := r.a.Hello(e.ids[r.from], e.addrs[r.from], maxRecvBytes, r.chosen)
	if !e.send(ri, 0, hello) {
		return
	}
	if resent > 0 || r.wake {
		r.wake = false
		e.signal(ri, 0)
	}
}

// arrive handles an envelope reaching its end of a stream.
func (e *ptEngine) arrive(ev *pevent) {
	r := e.rels[ev.i]
	if r.gen != ev.gen {
		return // discarded in flight when the stream broke
	}
	if ev.dir == 1 {
		e.handle(r.from, ev.i, 0, ev.env)
		if ev.env.GetHello() != nil && !r.answered {
			// The link is up: the store waits for the peer, and both
			// ends learn what the other holds (connect digests).
			r.answered = true
			e.st.Refused += uint64(len(r.a.RefuseOversized()))
			e.nodes[r.from].PeerUp(e.at(), e.ids[r.to], true)
			e.pushFrame(ev.i, 0, e.nodes[r.from].ConnectDigest())
		}
		return
	}
	if r.b == nil {
		// ServeStream: the first envelope must be the hello; the acceptor
		// makes its end, links back if asked, answers with its own hello,
		// then handles the envelope.
		h, err := core.CheckHello(e.cfg, e.ids[r.to], ev.env)
		if err != nil {
			panic(fmt.Sprintf("sim: first envelope of a stream: %v", err)) // broken invariant
		}
		r.b = core.NewStream(streamQueueBytes, false)
		if h.GetLink() && e.ov != nil {
			e.ov.inbound(r.to, r.from, false)
			if r.gen != ev.gen {
				return
			}
		}
		if !e.send(ev.i, 1, r.b.Hello(e.ids[r.to], e.addrs[r.to], maxRecvBytes, false)) {
			return
		}
		e.pushFrame(ev.i, 1, e.nodes[r.to].ConnectDigest())
	}
	e.handle(r.to, ev.i, 1, ev.env)
}

// handle is the runtime's handleEnvelope at node i, for an envelope that
// arrived on side `side` of relation ri.
func (e *ptEngine) handle(i, ri int32, side uint8, env *pb.Envelope) {
	r := e.rels[ri]
	peer := r.to
	if side == 1 {
		peer = r.from
	}
	now := e.at()
	in := core.Decode(env, e.ids[peer])
	for _, msgs := range [][]*pb.GossipMessage{in.Messages, in.Repairs} {
		for _, m := range msgs {
			e.st.CopiesReceived++
			if k, ok := e.byHash[m.GetHash()]; ok {
				e.copies[k]++
			}
		}
	}
	ev := r.end(side).Receive(now, env)
	n := e.nodes[i]
	res := n.Step(now, e.ids[peer], in)
	if len(ev.Acked) > 0 {
		n.AckedBy(now, e.ids[peer], ev.Acked, ev.RTT)
		e.st.CopiesAcked += uint64(len(ev.Acked))
	}
	if len(res.Rejected) > 0 {
		panic(fmt.Sprintf("sim: node %d rejected frames from %d: %v", i, peer, res.Rejected)) // broken invariant
	}
	if len(res.Withdraw) > 0 {
		e.withdraw(i, peer, res.Withdraw)
	}
	for _, f := range res.Reply {
		if r.end(side) == nil { // the stream broke while handling
			e.st.FramesDropped++
			continue
		}
		e.pushFrame(ri, side, f)
	}
	for _, f := range res.Fresh {
		m, ok := e.byHash[f.Forward.GetHash()]
		if !ok {
			panic(fmt.Sprintf("sim: node %d delivered unknown message %q", i, f.Forward.GetHash())) // broken invariant
		}
		if e.recvAt[m][i] >= 0 {
			e.dupDeliveries++
		} else {
			e.recvAt[m][i] = e.now
			e.hops[m][i] = f.Hops
		}
		e.dispatch(i, f.Out)
	}
	e.dispatch(i, res.Out)
}

// withdraw applies peer's PRUNE of sources to every stream from i to it.
func (e *ptEngine) withdraw(i, peer int32, sources []string) {
	apply := func(s *core.Stream) {
		for _, src := range sources {
			e.st.Withdrawn += uint64(s.Withdraw(src))
		}
	}
	if ri := e.linkTo(i, peer); ri >= 0 {
		apply(e.rels[ri].a)
	}
	for _, ri := range e.pn[i].inb {
		if r := e.rels[ri]; r.from == peer && r.b != nil {
			apply(r.b)
		}
	}
}

// addNeighbor is the runtime's addNeighbor with streaming: the core gets
// the neighbour as a stream peer, and a link starts dialling it.
func (e *ptEngine) addNeighbor(i, j int32, chosen bool) {
	n := e.nodes[i]
	if e.linkTo(i, j) >= 0 {
		return // unchanged: keep its stream
	}
	if err := n.AddNeighbor(strings.Clone(e.ids[j]), e.addrs[j]); err != nil {
		panic(fmt.Sprintf("sim: node %d: AddNeighbor(%d): %v", i, j, err)) // broken invariant
	}
	n.SetPeerKind(e.ids[j], core.KindStream)
	ri := int32(len(e.rels))
	r := &rel{idx: ri, from: i, to: j, a: core.NewStream(streamQueueBytes, true), chosen: chosen, backoff: linkBackoffMin}
	e.rels = append(e.rels, r)
	e.pn[i].links = append(e.pn[i].links, ri)
	e.pn[j].inb = append(e.pn[j].inb, ri)
	e.push(pevent{at: max(e.now, e.pn[i].start), kind: pkDial, i: ri})
}

// removeNeighbor is the runtime's RemoveNeighbor: the core forgets the
// neighbour and the link stops (what it held is dropped).
func (e *ptEngine) removeNeighbor(i, j int32) {
	e.nodes[i].RemoveNeighbor(e.ids[j])
	ri := e.linkTo(i, j)
	if ri < 0 {
		return
	}
	r := e.rels[ri]
	r.closed = true
	e.breakRel(r)
	e.st.FramesDropped += uint64(len(r.a.Drain()))
	e.pn[i].links = removeIndex(e.pn[i].links, ri)
	e.pn[j].inb = removeIndex(e.pn[j].inb, ri)
}

func removeIndex(s []int32, v int32) []int32 {
	for k, x := range s {
		if x == v {
			return append(s[:k], s[k+1:]...)
		}
	}
	return s
}

// overlayGraph is the neighbour graph at the end of the run, undirected
// (data flows both ways on a relation: pushes one way, answers to
// digests the other).
func (e *ptEngine) overlayGraph() topology.Graph {
	g := make(topology.Graph, len(e.nodes))
	for _, r := range e.rels {
		if !r.closed {
			g[r.from] = append(g[r.from], int(r.to))
			g[r.to] = append(g[r.to], int(r.from))
		}
	}
	return g
}
