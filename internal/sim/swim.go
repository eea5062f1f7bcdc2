package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/grpc-gossip/gossip/internal/swim"
)

// swimNet drives the real SWIM core (internal/swim) of every node, as the
// runtime's membership loop does: Tick when Next is due, Step for each
// datagram that arrives, Ready's messages sent and its events handed to
// onEvents (the runtime rebalances the node's neighbours there). Messages
// are datagrams over the scenario's links (one-way delay, independent
// loss); a PingReq's intermediate relays the target's Ack, or a Nack when
// the PingReq's Timeout passes, as the runtime's RPC handler does.
//
// The views start converged and quiet, as in a cluster that has run for
// a while: every node knows every member alive (one full-state SyncReply),
// and the join news that adds to its piggyback queue is drained at time
// 0 (local pings whose acks go nowhere) — otherwise the first minute
// would be a storm of join gossip no long-running cluster has.
type swimNet struct {
	e        *ptEngine
	cfg      swim.Config
	nodes    []*swim.Node
	wakeAt   []int64
	relays   map[relayKey]relayTo
	onEvents func(i int32, evs []swim.Event)

	sent, dropped uint64
}

type relayKey struct {
	node int32
	seq  uint64
}

type relayTo struct {
	requester int32
	seq       uint64
}

func newSwimNet(e *ptEngine, cfg swim.Config, onEvents func(int32, []swim.Event)) *swimNet {
	return &swimNet{e: e, cfg: cfg, relays: make(map[relayKey]relayTo), onEvents: onEvents}
}

// start creates every node's SWIM core with a converged, quiet view.
func (s *swimNet) start() {
	e := s.e
	n := len(e.ids)
	all := make([]swim.Update, n)
	for j := range all {
		all[j] = swim.Update{ID: e.ids[j], Addr: e.addrs[j], State: swim.Alive}
	}
	now := e.at()
	s.nodes = make([]*swim.Node, n)
	s.wakeAt = make([]int64, n)
	for i := range s.nodes {
		c := s.cfg
		c.Seed = splitmix64(e.sc.Seed ^ uint64(i)<<20 ^ 0x5717)
		nd, err := swim.New(now, e.ids[i], e.addrs[i], c)
		if err != nil {
			panic(fmt.Sprintf("sim: swim.New: %v", err)) // broken invariant: ids and config are ours
		}
		nd.Step(now, swim.Message{Kind: swim.KindSyncReply, Updates: all})
		for nd.Pending() > 0 {
			nd.Step(now, swim.Message{Kind: swim.KindPing, Target: e.ids[i]})
		}
		nd.Ready()
		s.nodes[i] = nd
		s.schedule(int32(i))
	}
}

// schedule queues node i's next timer, unless one is queued already for
// that time or earlier.
func (s *swimNet) schedule(i int32) {
	e := s.e
	next := max(s.nodes[i].Next().Sub(epoch).Nanoseconds(), e.now)
	if w := s.wakeAt[i]; w == 0 || next < w || w <= e.now {
		s.wakeAt[i] = next
		e.push(pevent{at: next, kind: pkSwimWake, i: i})
	}
}

func (s *swimNet) handle(ev *pevent) {
	e := s.e
	i := ev.i
	if e.crashed[i] {
		if ev.kind == pkSwimMsg {
			s.dropped++
		}
		return
	}
	switch ev.kind {
	case pkSwimMsg:
		s.deliver(i, ev.sm)
	case pkSwimWake:
		if ev.at != s.wakeAt[i] {
			return // superseded by an earlier wake-up
		}
		s.nodes[i].Tick(e.at())
		s.settle(i)
	case pkSwimRelay:
		k := relayKey{i, ev.sm.Seq}
		if r, ok := s.relays[k]; ok {
			delete(s.relays, k)
			s.transmit(i, swim.Message{Kind: swim.KindNack, From: e.ids[i], FromAddr: e.addrs[i], To: e.ids[r.requester], ToAddr: e.addrs[r.requester], Seq: r.seq})
		}
	}
}

// transmit puts m on the wire from node i.
func (s *swimNet) transmit(i int32, m swim.Message) {
	e := s.e
	s.sent++
	if e.sc.Loss > 0 && e.net.Float64() < e.sc.Loss {
		s.dropped++
		return
	}
	e.push(pevent{at: e.now + e.delay(), kind: pkSwimMsg, i: nodeIndex(m.To), sm: &m})
}

func (s *swimNet) deliver(i int32, m *swim.Message) {
	e := s.e
	if m.Kind == swim.KindAck {
		k := relayKey{i, m.Seq}
		if r, ok := s.relays[k]; ok {
			delete(s.relays, k)
			s.transmit(i, swim.Message{Kind: swim.KindAck, From: e.ids[i], FromAddr: e.addrs[i], To: e.ids[r.requester], ToAddr: e.addrs[r.requester], Seq: r.seq})
		}
	}
	reply, ok := s.nodes[i].Step(e.at(), *m)
	if ok {
		if m.Kind == swim.KindPingReq {
			s.relays[relayKey{i, reply.Seq}] = relayTo{requester: nodeIndex(m.From), seq: m.Seq}
			e.push(pevent{at: e.now + int64(m.Timeout), kind: pkSwimRelay, i: i, sm: &swim.Message{Seq: reply.Seq}})
		}
		s.transmit(i, reply)
	}
	s.settle(i)
}

// settle sends what node i wants sent, hands over its events and
// schedules its next timer.
func (s *swimNet) settle(i int32) {
	msgs, evs := s.nodes[i].Ready()
	for _, m := range msgs {
		s.transmit(i, m)
	}
	if len(evs) > 0 && s.onEvents != nil {
		s.onEvents(i, evs)
	}
	s.schedule(i)
}

// detection is the model's failure detection: the delays from a crash to
// the moment a survivor marks the crashed member dead, as the real SWIM
// core measured them at calN nodes with the same fraction crashed, scaled
// to N by the suspicion timeout's growth (SuspicionTimeouts(N) /
// SuspicionTimeouts(calN): the timeouts grow with log10 N, the probe
// rounds do not, so this errs on the slow side).
type detection struct {
	calN, n int
	frac    float64
	scale   float64
	samples []int64 // sorted, scaled
	total   int     // samples plus pairs never detected in the calibration run
	falseD  int     // live members declared dead in the calibration run
	wall    time.Duration
}

// delay is the detection delay of the pair (i, j); ok is false when the
// pair is never detected (it was not within the calibration run).
func (d *detection) delay(seed uint64, i, j int32) (int64, bool) {
	if d.total == 0 {
		return 0, false
	}
	u := splitmix64(seed ^ uint64(i)<<32 ^ uint64(uint32(j)) ^ 0xde7ec7ed)
	k := int((u >> 11) * uint64(d.total) >> 53)
	if k >= len(d.samples) {
		return 0, false
	}
	return d.samples[k], true
}

// detected is the expected number of the nDead crashed members a node has
// marked dead t after the crash.
func (d *detection) detected(t int64, nDead int) int {
	if d.total == 0 {
		return 0
	}
	k := sort.Search(len(d.samples), func(x int) bool { return d.samples[x] > t })
	return int(float64(nDead) * float64(k) / float64(d.total))
}

// times are the delays at which detected can change.
func (d *detection) times() []int64 { return d.samples }

func (d *detection) summary() *DetectionSummary {
	s := detectionSummary(nil, d.total-len(d.samples), d.calN, d.n, d.scale)
	s.setFrom(d.samples)
	s.FalseDead = d.falseD
	s.CalibrationWall = d.wall
	return s
}

// CalibrationNodes is the size of the SWIM run RepairModel's detection
// delays come from (N itself when smaller): the SWIM core's Next and Tick
// walk every running suspicion, so after a mass crash each of its calls
// costs O(crashed members); 1,000 nodes take 15–80 s of wall time.
const CalibrationNodes = 1000

// calibrations caches measureDetection's results: a failure sweep runs
// each fraction with and without repair (and asks for the horizon
// first). The values are a function of their key.
var calibrations struct {
	sync.Mutex
	m map[calKey]*detection
}

type calKey struct {
	calN, n int
	frac    float64
	lat     Latency
	loss    float64
	seed    uint64
}

// Detection returns the failure-detection delays RepairModel uses for
// sc (validated): the real SWIM core's, measured at min(Nodes,
// CalibrationNodes) nodes with sc.Crash of them crashed and scaled to
// sc.Nodes. The result is cached for the process.
func Detection(sc Scenario) (*DetectionSummary, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	d, err := detectionFor(sc)
	if err != nil {
		return nil, err
	}
	return d.summary(), nil
}

func detectionFor(sc Scenario) (*detection, error) {
	k := calKey{min(sc.Nodes, CalibrationNodes), sc.Nodes, sc.Crash, sc.Latency, sc.Loss, sc.Seed}
	calibrations.Lock()
	defer calibrations.Unlock()
	if d := calibrations.m[k]; d != nil {
		return d, nil
	}
	d, err := measureDetection(k.calN, k.n, k.frac, k.lat, k.loss, k.seed)
	if err != nil {
		return nil, err
	}
	if calibrations.m == nil {
		calibrations.m = make(map[calKey]*detection)
	}
	calibrations.m[k] = d
	return d, nil
}

// measureDetection runs the real SWIM core on calN nodes (no gossip
// traffic: membership alone) with the links of the scenario, crashes the
// fraction frac of them at once 10 s in, and records, for every
// (survivor, crashed member) pair, how long until the survivor marked it
// dead (for at most 10 minutes). The delays are scaled to n nodes.
func measureDetection(calN, n int, frac float64, lat Latency, loss float64, seed uint64) (*detection, error) {
	wall := time.Now()
	sc := Scenario{Nodes: calN, Latency: lat, Loss: loss, Seed: seed ^ 0xca1b}
	e := &ptEngine{sc: sc, ids: make([]string, calN), addrs: make([]string, calN),
		crashed: make([]bool, calN), willCrash: make([]bool, calN),
		net: rand.New(rand.NewPCG(splitmix64(sc.Seed^21), splitmix64(sc.Seed^22)))}
	for i := range e.ids {
		e.ids[i], e.addrs[i] = nodeID(i), nodeAddr(i)
	}
	pick := rand.New(rand.NewPCG(splitmix64(sc.Seed^23), splitmix64(sc.Seed^24)))
	nDead := int(frac * float64(calN))
	for _, i := range pick.Perm(calN)[:nDead] {
		e.willCrash[i] = true
	}
	want := (calN - nDead) * nDead
	var samples []int64
	falseDead := 0
	const killAt = int64(10 * time.Second)
	cfg := swim.DefaultLANConfig()
	sw := newSwimNet(e, cfg, func(i int32, evs []swim.Event) {
		for _, ev := range evs {
			if ev.Kind != swim.EventDead {
				continue
			}
			if e.crashed[nodeIndex(ev.Member.ID)] {
				samples = append(samples, e.now-killAt)
			} else {
				falseDead++
			}
		}
	})
	sw.start()
	e.push(pevent{at: killAt, kind: pkCrash})
	limit := killAt + int64(10*time.Minute)
	for len(e.q) > 0 && len(samples) < want {
		ev := e.q.pop()
		if ev.at > limit {
			break
		}
		e.now = ev.at
		if ev.kind == pkCrash {
			copy(e.crashed, e.willCrash)
			continue
		}
		sw.handle(&ev)
	}
	if want > 0 && len(samples) == 0 {
		return nil, fmt.Errorf("detection calibration: no crash detected within 10 minutes at %d nodes", calN)
	}
	lo, _ := cfg.SuspicionTimeouts(n)
	calLo, _ := cfg.SuspicionTimeouts(calN)
	scale := float64(lo) / float64(calLo)
	for k := range samples {
		samples[k] = int64(float64(samples[k]) * scale)
	}
	slices.Sort(samples)
	return &detection{calN: calN, n: n, frac: frac, scale: scale, samples: samples, total: want, falseD: falseDead, wall: time.Since(wall)}, nil
}
