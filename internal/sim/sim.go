// Package sim is a discrete-event simulator of the gossip protocol at
// scale: the real protocol core (internal/core) on every node, a simulated
// network with loss, delay distributions, crashed nodes and partitions,
// and virtual time, so 10,000 to 100,000 nodes run in one goroutine.
//
// It has two engines, chosen by Scenario.Protocol.
//
// ProtoPlumtree (plumtree.go) is what users run: every neighbour is a
// stream peer, and the engine plays the runtime's part of stream.go and
// link.go at the module root — per directed neighbour relation a pair of
// core.Stream (the opener's with track=true), envelopes built by
// Stream.Next and handled exactly as handleEnvelope does (core.Decode,
// Stream.Receive, Node.Step), the writer woken by eager frames, lazy
// frames flushed every GraftTimeout/2, Grafts every GraftTimeout/4, a
// digest every SyncInterval ±10 %, Tick every second. A lost envelope
// breaks its stream, as in memnet. Over the membership overlay
// (TopoMembership) the neighbours are repaired after crashes by the
// runtime's rebalance, fed by the real SWIM core of every node
// (RepairSwim, swim.go) or by a detection model calibrated on it
// (RepairModel); overlay.go.
//
// ProtoFlood and ProtoPush (this file) are the seed's unary push, where
// the runtime starts a goroutine per forward and waits on gRPC:
//
//	publish   core.Node.Receive at the origin
//	send      core.Node.AttemptStarted; draw loss and delay; schedule the
//	          arrival, or the sender's timeout if the request is lost
//	arrive    core.Node.Receive at the receiver; a fresh message starts
//	          one send per Result.Targets; schedule the ACK's arrival, or
//	          the sender's timeout if the ACK is lost or late
//	ack       core.Node.SendResult with the ACK
//	timeout   core.Node.SendResult with a retryable error; a retry is a
//	          send after the core's backoff
//	tick      core.Node.Tick on every live node (the decay loop)
//	crash, partition, heal
//
// Ties are broken by scheduling order, and all randomness comes from
// seeded PCG generators, so a Scenario always produces the same Report.
// There are no goroutines and no memnet: memnet spends goroutines per
// stream and per send, which does not scale to 10,000 nodes.
package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/topology"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Options are the knobs of Run that do not change its Report (except Perf).
type Options struct {
	// MeasureMemory runs the garbage collector at four points to measure
	// the heap the nodes hold (Perf.Memory). It adds about a second at
	// 100,000 nodes. Unary engines only: a Plumtree report has no memory
	// figures.
	MeasureMemory bool
	// Progress, if set, is called every 2^20 events with the virtual time,
	// the events processed and the events queued.
	Progress func(virtual time.Duration, events uint64, queued int)
}

// epoch is virtual time 0 as the nodes see it. It is far from the zero
// time: the core must not treat time.Time{} as special.
var epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// errTimeout is the error of an attempt that got no ACK before its
// deadline; the runtime's equivalent is DeadlineExceeded, which is
// retryable.
var errTimeout = errors.New("simulated ACK timeout")

// payload is every message's payload. The core does not retain payloads,
// so their size does not change memory per node.
const payload = "simulated payload"

// nodeID is node i's id; nodeIndex inverts it. Ids and endpoints have
// realistic lengths (the daemon's default id is "<host>-<port>") because
// every node keeps its own copy of its neighbours' ids and endpoints.
func nodeID(i int) string   { return "node-" + strconv.Itoa(i) }
func nodeAddr(i int) string { return fmt.Sprintf("10.%d.%d.%d:7946", i>>16&255, i>>8&255, i&255) }
func nodeIndex(id string) int32 {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "node-"))
	if err != nil {
		panic(fmt.Sprintf("sim: core returned unknown target %q", id)) // broken invariant
	}
	return int32(i)
}

// engine is the state of one run.
type engine struct {
	sc    Scenario
	cfg   *core.Config // shared by every node: the core never modifies it
	g     topology.Graph
	ids   []string
	nodes []*core.Node

	crashed   []bool // crashed now
	willCrash []bool // crashes at CrashAt (or is down from the start)
	sideA     []bool // partition side
	cut       bool   // the partition holds now

	net        *rand.Rand // loss and delay draws
	q          eventQueue
	seq        uint64
	now        int64
	ackTimeout int64
	maxTime    int64
	proc       int64

	msgs   []message
	recvAt [][]int64  // [message][node]: first receipt, ns since 0; -1 none
	hops   [][]uint32 // [message][node]: hops of the first receipt
	copies []uint64   // [message]: copies that reached a live node

	ackNew, ackDup *pb.GossipAck

	events        uint64
	lastActive    int64  // time of the last event other than a tick
	arrivals      uint64 // copies that reached a live node
	dupDeliveries uint64 // fresh receipts of a message a node already had: a core bug
	truncated     bool
	progress      func(time.Duration, uint64, int)
}

// message is one published message.
type message struct {
	hash   string
	origin int32
	at     int64 // publish time
}

// Run simulates sc and returns its report.
func Run(sc Scenario, opt Options) (*Report, error) {
	wallStart := time.Now()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if sc.Protocol == ProtoPlumtree {
		return runPlumtree(sc, opt)
	}
	g, err := buildGraph(sc.Topology, sc.Nodes, sc.Degree, sc.FanoutExtra, sc.Seed)
	if err != nil {
		return nil, err
	}
	e := newEngine(sc, g)
	e.progress = opt.Progress

	var mem Memory
	var m0, m1, m2 int64
	if opt.MeasureMemory {
		m0 = liveHeap()
		mem.SimBytes = m0
	}
	if err := e.buildNodes(); err != nil {
		return nil, err
	}
	if opt.MeasureMemory {
		m1 = liveHeap()
	}
	setupWall := time.Since(wallStart)

	runStart := time.Now()
	e.schedule()
	e.run()
	runWall := time.Since(runStart)
	e.q = nil // release the queue before measuring

	r := e.report()
	if opt.MeasureMemory {
		m2 = liveHeap()
		// Let every hot entry expire, as the decay loop would MaxTTL later:
		// what remains is what a node keeps for LongTTL.
		later := epoch.Add(time.Duration(e.now) + e.cfg.MaxTTL + time.Second)
		for i, n := range e.nodes {
			if !e.crashed[i] {
				n.Tick(later)
			}
		}
		m3 := liveHeap()
		var decayedSeen int
		for _, n := range e.nodes {
			decayedSeen += n.Storage().Stats().Seen
		}
		n := float64(len(e.nodes))
		mem.IdlePerNode = float64(m1-m0) / n
		mem.EndPerNode = float64(m2-m0) / n
		mem.DecayedPerNode = float64(m3-m0) / n
		mem.ActiveAtEnd = r.Storage.Active
		mem.SeenAtEnd = r.Storage.Seen
		if r.Storage.Active > 0 {
			mem.PerHotEntry = float64(m2-m3) / float64(r.Storage.Active)
		}
		if decayedSeen > 0 {
			mem.PerRememberedID = float64(m3-m1) / float64(decayedSeen)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mem.SysBytes = int64(ms.Sys)
		r.Perf.Memory = &mem
		runtime.KeepAlive(e)
	}
	r.Perf.SetupWall = setupWall
	r.Perf.RunWall = runWall
	r.Perf.Wall = time.Since(wallStart)
	r.Perf.Events = e.events
	if s := runWall.Seconds(); s > 0 {
		r.Perf.EventsPerSec = float64(e.events) / s
	}
	return r, nil
}

// liveHeap is the heap in live objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// splitmix64 derives independent seeds from one.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newEngine draws everything but the nodes: crashed and partitioned nodes,
// publishers and message ids. Each has its own random stream, so changing
// the loss or the delays does not change the graph or the publishers.
func newEngine(sc Scenario, g topology.Graph) *engine {
	n := sc.Nodes
	cfg := sc.Core // validated by sc.Validate
	e := &engine{
		sc:         sc,
		cfg:        &cfg,
		g:          g,
		ids:        make([]string, n),
		crashed:    make([]bool, n),
		willCrash:  make([]bool, n),
		sideA:      make([]bool, n),
		net:        rand.New(rand.NewPCG(splitmix64(sc.Seed^1), splitmix64(sc.Seed^2))),
		ackTimeout: int64(cfg.AckTimeout),
		maxTime:    int64(sc.MaxTime),
		proc:       int64(sc.Proc),
		ackNew:     &pb.GossipAck{},
		ackDup:     &pb.GossipAck{Duplicate: true},
	}
	for i := range e.ids {
		e.ids[i] = nodeID(i)
	}
	pick := rand.New(rand.NewPCG(splitmix64(sc.Seed^3), splitmix64(sc.Seed^4)))
	perm := pick.Perm(n)
	nCrash := int(sc.Crash * float64(n))
	for _, i := range perm[:nCrash] {
		e.willCrash[i] = true
	}
	live := perm[nCrash:]
	publishers := live
	if sc.Publishers > 0 {
		publishers = live[:sc.Publishers] // Validate: at most len(live)
	}
	part := rand.New(rand.NewPCG(splitmix64(sc.Seed^5), splitmix64(sc.Seed^6)))
	if sc.Partition > 0 {
		for _, i := range part.Perm(n)[:int(sc.Partition*float64(n))] {
			e.sideA[i] = true
		}
	}
	times := sc.publishTimes()
	e.msgs = make([]message, sc.Messages)
	e.copies = make([]uint64, sc.Messages)
	e.recvAt = make([][]int64, sc.Messages)
	e.hops = make([][]uint32, sc.Messages)
	for m := range e.msgs {
		at := times[m]
		e.msgs[m] = message{
			hash:   fmt.Sprintf("%016x%016x", pick.Uint64(), pick.Uint64()), // like Publish's 128-bit hex ids
			origin: int32(publishers[pick.IntN(len(publishers))]),
			at:     at,
		}
		e.recvAt[m] = make([]int64, n)
		for i := range e.recvAt[m] {
			e.recvAt[m][i] = -1
		}
		e.hops[m] = make([]uint32, n)
	}
	return e
}

// buildNodes creates every node with its neighbours.
func (e *engine) buildNodes() error {
	e.nodes = make([]*core.Node, len(e.g))
	for i, nbrs := range e.g {
		n := core.NewNode(strings.Clone(e.ids[i]), e.cfg, core.NewStorage(e.cfg), nil, splitmix64(e.sc.Seed+uint64(i)+0x51))
		for _, j := range nbrs {
			// Each node keeps its own copy of ids and endpoints, as separate
			// processes would.
			if err := n.AddNeighbor(strings.Clone(e.ids[j]), nodeAddr(j)); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
		}
		e.nodes[i] = n
	}
	return nil
}

func (e *engine) push(ev event) {
	ev.seq = e.seq
	e.seq++
	e.q.push(ev)
}

// schedule queues the publishes and the scripted events.
func (e *engine) schedule() {
	if e.sc.Crash > 0 {
		if e.sc.CrashAt == 0 {
			copy(e.crashed, e.willCrash)
		} else {
			e.push(event{at: int64(e.sc.CrashAt), kind: evCrash})
		}
	}
	if e.sc.Partition > 0 {
		if e.sc.PartitionAt == 0 {
			e.cut = true
		} else {
			e.push(event{at: int64(e.sc.PartitionAt), kind: evPartition})
		}
		if e.sc.HealAt > 0 {
			e.push(event{at: int64(e.sc.HealAt), kind: evHeal})
		}
	}
	for m, msg := range e.msgs {
		e.push(event{at: msg.at, kind: evPublish, msg: int32(m), to: msg.origin})
	}
	if e.sc.Tick > 0 {
		e.push(event{at: int64(e.sc.Tick), kind: evTick})
	}
}

// run processes events until none is left or MaxTime passes.
func (e *engine) run() {
	for len(e.q) > 0 {
		ev := e.q.pop()
		if ev.at > e.maxTime {
			e.truncated = true
			return
		}
		e.now = ev.at
		e.events++
		if ev.kind != evTick {
			e.lastActive = e.now
		}
		if e.progress != nil && e.events&(1<<20-1) == 0 {
			e.progress(time.Duration(e.now), e.events, len(e.q))
		}
		switch ev.kind {
		case evPublish:
			e.publish(ev.msg)
		case evSend:
			if !e.crashed[ev.from] {
				e.send(ev.from, ev.to, ev.fwd, ev.msg, ev.attempt)
			}
		case evArrive:
			e.arrive(&ev)
		case evAck:
			if !e.crashed[ev.from] {
				e.result(&ev, nil)
			}
		case evTimeout:
			if !e.crashed[ev.from] {
				e.result(&ev, errTimeout)
			}
		case evTick:
			t := e.at()
			for i, n := range e.nodes {
				if !e.crashed[i] {
					n.Tick(t)
				}
			}
			if len(e.q) > 0 { // tick only while something else can happen
				e.push(event{at: e.now + int64(e.sc.Tick), kind: evTick})
			}
		case evCrash:
			copy(e.crashed, e.willCrash)
		case evPartition:
			e.cut = true
		case evHeal:
			e.cut = false
		}
	}
}

// at is the current virtual time as the nodes see it.
func (e *engine) at() time.Time { return epoch.Add(time.Duration(e.now)) }

// separated reports whether the partition cuts the link a–b now.
func (e *engine) separated(a, b int32) bool { return e.cut && e.sideA[a] != e.sideA[b] }

// publish hands message m to its origin, as the application would.
func (e *engine) publish(m int32) {
	msg := e.msgs[m]
	e.deliver(msg.origin, m, &pb.GossipMessage{
		Hash:            msg.hash,
		FromHash:        e.ids[msg.origin],
		Payload:         payload,
		CreatedUnixNano: e.at().UnixNano(),
	})
}

// deliver runs Receive at node `to` and starts the forwards of a fresh
// message. It returns the ACK's duplicate flag.
func (e *engine) deliver(to, m int32, msg *pb.GossipMessage) (dup bool) {
	if e.recvAt[m][to] < 0 {
		// Decode: a node owns the strings it retains. Only a first receipt
		// retains anything, so copies the node already has are not
		// copied (this only affects the memory measurement).
		msg = &pb.GossipMessage{
			Hash:            strings.Clone(msg.GetHash()),
			FromHash:        strings.Clone(msg.GetFromHash()),
			Payload:         msg.GetPayload(),
			Origin:          strings.Clone(msg.GetOrigin()),
			Hops:            msg.GetHops(),
			CreatedUnixNano: msg.GetCreatedUnixNano(),
		}
	}
	res, err := e.nodes[to].Receive(e.at(), msg)
	if err != nil {
		panic(fmt.Sprintf("sim: node %d rejected a valid message: %v", to, err)) // broken invariant
	}
	if !res.Fresh {
		return true
	}
	if e.recvAt[m][to] >= 0 {
		e.dupDeliveries++
	} else {
		e.recvAt[m][to] = e.now
		e.hops[m][to] = msg.GetHops()
	}
	for _, t := range res.Targets {
		j := nodeIndex(t.ID)
		if e.proc > 0 {
			e.push(event{at: e.now + e.proc, kind: evSend, from: to, to: j, fwd: res.Forward, msg: m, attempt: 1})
		} else {
			e.send(to, j, res.Forward, m, 1)
		}
	}
	return false
}

// target is node j as a core.Target. Its strings are shared, which is
// fine: the core compares them, it does not keep them.
func (e *engine) target(j int32) core.Target {
	return core.Target{ID: e.ids[j], Addr: e.ids[j]}
}

// send starts one attempt of forwarding fwd from → to at the current time.
func (e *engine) send(from, to int32, fwd *pb.GossipMessage, m int32, attempt uint8) {
	e.nodes[from].AttemptStarted(e.target(to), int(attempt))
	deadline := e.now + e.ackTimeout
	u := e.net.Float64()
	lostReq := u < e.sc.Loss/2
	lostAck := !lostReq && u < e.sc.Loss
	if lostReq || e.separated(from, to) {
		e.push(event{at: deadline, kind: evTimeout, from: from, to: to, fwd: fwd, msg: m, attempt: attempt, start: e.now})
		return
	}
	arrive := e.now + int64(e.sc.Latency.Sample(e.net))
	if arrive >= deadline {
		// The request is still on its way when the sender gives up (gRPC
		// would not run a handler whose deadline has passed).
		e.push(event{at: deadline, kind: evTimeout, from: from, to: to, fwd: fwd, msg: m, attempt: attempt, start: e.now})
		return
	}
	e.push(event{at: arrive, kind: evArrive, from: from, to: to, fwd: fwd, msg: m, attempt: attempt, start: e.now, lostAck: lostAck})
}

// arrive handles a request reaching its receiver.
func (e *engine) arrive(ev *event) {
	deadline := ev.start + e.ackTimeout
	timeout := event{at: deadline, kind: evTimeout, from: ev.from, to: ev.to, fwd: ev.fwd, msg: ev.msg, attempt: ev.attempt, start: ev.start}
	if e.crashed[ev.to] {
		e.push(timeout)
		return
	}
	e.arrivals++
	e.copies[ev.msg]++
	dup := e.deliver(ev.to, ev.msg, ev.fwd)
	if ev.lostAck || e.separated(ev.to, ev.from) {
		e.push(timeout)
		return
	}
	back := e.now + int64(e.sc.Latency.Sample(e.net))
	if back >= deadline {
		e.push(timeout)
		return
	}
	e.push(event{at: back, kind: evAck, from: ev.from, to: ev.to, fwd: ev.fwd, msg: ev.msg, attempt: ev.attempt, start: ev.start, dup: dup})
}

// result reports an attempt's outcome to its sender and schedules the
// retry the core asks for.
func (e *engine) result(ev *event, err error) {
	var ack *pb.GossipAck
	rtt := time.Duration(e.now - ev.start)
	if err == nil {
		ack = e.ackNew
		if ev.dup {
			ack = e.ackDup
		}
	}
	retry, after := e.nodes[ev.from].SendResult(e.at(), e.target(ev.to), ev.fwd.GetHash(), int(ev.attempt), ack, err, err != nil, rtt)
	if retry {
		e.push(event{at: e.now + int64(after), kind: evSend, from: ev.from, to: ev.to, fwd: ev.fwd, msg: ev.msg, attempt: ev.attempt + 1})
	}
}
