package gossip

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-gossip/gossip/internal/swim"
)

// membership is the runtime around the node's swim core: one goroutine
// that runs the core's timers and carries its messages, RPC handlers that
// step it, and the neighbour-set manager. It starts on the first Join or
// membership RPC (a node that never meets another keeps its static
// neighbours only) and stops in Close.
//
// Lock order: membership.mu, then GossipNode.mu (through AddNeighbor and
// friends); the event handler and RPCs run with neither held.
type membership struct {
	n       *GossipNode
	cfg     MembershipConfig
	handler func(MemberEvent)

	mu      sync.Mutex
	core    *swim.Node // nil until started
	stopped bool
	rng     *rand.Rand
	added   map[string]string // neighbours membership added: id → address
	out     map[string]bool   // those of them this node chose (the others chose it: Link)
	leftCh  chan struct{}     // closed when the leave has reached enough members
	leftOK  int               // successful sends that carried our leave
	leftFor int               // how many Leave waits for

	wake  chan struct{}
	sends chan struct{} // one slot per RPC in flight
	wg    sync.WaitGroup

	limit atomic.Pointer[clusterLimit] // the cluster's payload limit (updateLimit)

	changes  [4]atomic.Uint64 // members moved to alive, suspect, dead, left (MembershipStats.ToAlive…)
	probeRTT histogram        // direct probes' round trips, ns (gossip_probe_rtt_seconds)

	rttMu sync.Mutex
	rtts  map[string]time.Duration // member id → its last answered direct probe's round trip (until reaped)
}

// maxMembershipSends bounds the membership RPCs in flight; beyond it a
// message is dropped, as a lost datagram would be (SWIM tolerates it).
const maxMembershipSends = 256

func newMembership(n *GossipNode, o membershipOptions) (*membership, error) {
	cfg := o.cfg
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &membership{
		n: n, cfg: cfg, handler: o.handler,
		rng:   rand.New(rand.NewPCG(membershipSeed(n), 0x5157)),
		added: make(map[string]string), out: make(map[string]bool),
		wake: make(chan struct{}, 1), sends: make(chan struct{}, maxMembershipSends),
		probeRTT: newHistogram(probeRTTBounds), rtts: make(map[string]time.Duration),
	}, nil
}

// membershipSeed seeds the node's membership randomness: Config.Seed (or
// a random one) mixed with the node's id, so that nodes sharing a Seed
// still choose differently, as the gossip core does.
func membershipSeed(n *GossipNode) uint64 {
	seed := n.cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	h := fnv.New64a()
	h.Write([]byte(n.Hash))
	return seed ^ h.Sum64()
}

// errNoMembership is returned when membership cannot run: the node has no
// advertised address.
var errNoMembership = errors.New("gossip: membership needs the node's Endpoint (the address others reach it at)")

// start creates the core and its goroutine on first use.
func (m *membership) start() (*swim.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.core != nil {
		return m.core, nil
	}
	if m.stopped || m.n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if m.n.Endpoint == "" {
		return nil, errNoMembership
	}
	sc := m.cfg.swim()
	sc.Seed = m.rng.Uint64()
	core, err := swim.New(time.Now(), m.n.Hash, m.n.Endpoint, sc)
	if err != nil {
		return nil, fmt.Errorf("gossip: membership: %w", err)
	}
	core.SetMaxPayload(uint64(m.n.cfg.MaxPayloadBytes))
	m.core = core
	m.wg.Add(1)
	go m.loop()
	return core, nil
}

// numLive is the number of alive and suspect members, this node included
// (0 before membership started).
func (m *membership) numLive() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.core == nil {
		return 0
	}
	return m.core.NumLive()
}

// stop ends the goroutines; the node's context is already cancelled.
func (m *membership) stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *membership) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// loop runs the core's timers and carries out what it asks for.
func (m *membership) loop() {
	defer m.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m.mu.Lock()
		next := m.core.Next()
		m.mu.Unlock()
		t.Reset(max(time.Until(next), 0))
		select {
		case <-t.C:
			m.mu.Lock()
			m.core.Tick(time.Now())
			m.mu.Unlock()
		case <-m.wake:
		case <-m.n.ctx.Done():
			return
		}
		m.flush()
	}
}

// flush sends the core's messages and reports its events.
func (m *membership) flush() {
	m.mu.Lock()
	msgs, evs := m.core.Ready()
	m.mu.Unlock()
	for _, msg := range msgs {
		m.send(msg)
	}
	if len(evs) == 0 {
		return
	}
	for _, e := range evs {
		if i := stateChange(e.Kind); i >= 0 {
			m.changes[i].Add(1)
		}
		if e.Kind == swim.EventReap {
			m.rttMu.Lock()
			delete(m.rtts, e.Member.ID)
			m.rttMu.Unlock()
		}
		m.n.logger.Info("member "+e.Kind.String(), "peer", e.Member.ID, "endpoint", e.Member.Addr,
			"state", e.Member.State.String(), "incarnation", e.Member.Incarnation)
	}
	m.updateLimit()
	m.rebalance(false)
	for _, e := range evs {
		me := MemberEvent{Kind: MemberEventKind(e.Kind), Member: memberFromSwim(e.Member), At: e.At}
		m.n.emitWatch(WatchEvent{Kind: WatchMember, At: e.At, Member: me})
		if m.handler != nil {
			m.handler(me)
		}
	}
}

// probed records the round trip of an answered direct probe of member id.
func (m *membership) probed(id string, rtt time.Duration) {
	m.probeRTT.observe(int64(rtt))
	m.rttMu.Lock()
	m.rtts[id] = rtt
	m.rttMu.Unlock()
}

// probeRTTOf is the round trip of member id's last answered direct
// probe; 0 when none.
func (m *membership) probeRTTOf(id string) time.Duration {
	m.rttMu.Lock()
	defer m.rttMu.Unlock()
	return m.rtts[id]
}

// stateChange is the index in membership.changes of the state an event
// moved a member to, or -1 for an event that is not a state change.
func stateChange(k swim.EventKind) int {
	switch MemberEventKind(k) {
	case MemberJoined, MemberAliveAgain:
		return 0
	case MemberSuspected:
		return 1
	case MemberDied:
		return 2
	case MemberLeftCluster:
		return 3
	}
	return -1
}

// clusterLimit is the largest payload every live member accepts, and the
// member with the smallest limit (empty when it is this node's own).
type clusterLimit struct {
	bytes  int
	member string
}

// updateLimit recomputes the cluster's payload limit after membership
// changes (limits change only with members: a node's is fixed for its
// life).
func (m *membership) updateLimit() {
	lim := clusterLimit{bytes: m.n.cfg.MaxPayloadBytes}
	m.mu.Lock()
	m.core.Each(func(mb swim.Member) {
		if !mb.Self && (mb.State == swim.Alive || mb.State == swim.Suspect) && mb.MaxPayload > 0 && int(min(mb.MaxPayload, 1<<40)) < lim.bytes {
			lim = clusterLimit{bytes: int(mb.MaxPayload), member: mb.ID}
		}
	})
	m.mu.Unlock()
	m.limit.Store(&lim)
}

// checkPayload refuses a payload of size bytes that a live member could
// not take (a message is pushed to every member; one that refuses it would
// never deliver it).
func (m *membership) checkPayload(size int) error {
	lim := m.limit.Load()
	if lim == nil || lim.member == "" || size <= lim.bytes {
		return nil
	}
	return fmt.Errorf("%w: the payload is %d bytes and member %q accepts at most %d (its max payload), so the cluster cannot carry it: nothing was published",
		ErrPayloadTooLarge, size, lim.member, lim.bytes)
}

// spawn runs f on a goroutine that stop waits for, if a send slot is
// free and membership is not stopping; it reports whether f runs.
func (m *membership) spawn(f func()) bool {
	select {
	case m.sends <- struct{}{}:
	default:
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		<-m.sends
		return false
	}
	m.wg.Add(1) // under mu, so never after stop began to wait
	go func() {
		defer m.wg.Done()
		defer func() { <-m.sends }()
		f()
	}()
	return true
}

// send carries one message on its own goroutine (RPCs block).
func (m *membership) send(msg swim.Message) {
	if !m.spawn(func() { m.deliver(msg) }) {
		m.n.logger.Debug("membership message dropped: too many in flight or stopping", "peer", msg.To, "kind", msg.Kind.String())
	}
}

// deliver performs the RPC of one message.
func (m *membership) deliver(msg swim.Message) {
	if err := m.rpc(msg); err != nil {
		m.n.logger.Debug("membership RPC failed", "peer", msg.To, "endpoint", msg.ToAddr, "kind", msg.Kind.String(), "err", err)
		return
	}
	m.countLeave(msg)
}

// countLeave counts a delivered message that carried this node's leave.
func (m *membership) countLeave(msg swim.Message) {
	for _, u := range msg.Updates {
		if u.ID == m.n.Hash && u.State == swim.Left {
			m.mu.Lock()
			m.leftOK++
			if m.leftCh != nil && m.leftOK >= m.leftFor {
				close(m.leftCh)
				m.leftCh = nil
			}
			m.mu.Unlock()
			return
		}
	}
}

// step hands a message to the core and wakes the loop to carry out the
// consequences.
func (m *membership) step(msg swim.Message) (swim.Message, bool) {
	m.mu.Lock()
	reply, ok := m.core.Step(time.Now(), msg)
	m.mu.Unlock()
	m.poke()
	return reply, ok
}

// rebalance keeps the neighbour set at k = ceil(ln N) + FanoutExtra
// chosen members: neighbours membership added that are dead, left or
// forgotten are removed (static ones never), re-addressed ones follow, and
// random alive members fill the gap. Each choice is told to the chosen
// member (Link) so the link is two-way; with wait, rebalance returns once
// those Links are answered (Join: the node is reachable both ways when it
// returns), else they run in the background.
func (m *membership) rebalance(wait bool) {
	if m.cfg.StaticNeighborsOnly {
		return
	}
	current := m.n.Neighbors()
	m.mu.Lock()
	var members []swim.Member // this node first, then the others in probe order
	m.core.Each(func(mb swim.Member) { members = append(members, mb) })
	live := m.core.NumLive()
	state := make(map[string]swim.Member, len(members))
	for _, mb := range members {
		state[mb.ID] = mb
	}
	var remove, readdr []string
	for id, addr := range m.added {
		mb, ok := state[id]
		switch {
		case !ok || mb.State == swim.Dead || mb.State == swim.Left:
			remove = append(remove, id)
			delete(m.added, id)
			delete(m.out, id)
		case mb.Addr != addr:
			m.added[id] = mb.Addr
			readdr = append(readdr, id)
		}
	}
	k := 0
	if live > 1 {
		k = int(math.Ceil(math.Log(float64(live)))) + m.cfg.FanoutExtra
	}
	chosen := 0
	for id := range current {
		if _, ok := m.added[id]; !ok {
			if mb, known := state[id]; !known || mb.State == swim.Alive || mb.State == swim.Suspect {
				chosen++ // a static neighbour counts unless membership knows it gone
			}
		}
	}
	chosen += len(m.out)
	var add []swim.Member
	if chosen < k {
		var cands []swim.Member
		for _, mb := range members[1:] {
			if _, isNb := current[mb.ID]; mb.State == swim.Alive && !isNb {
				if _, ok := m.added[mb.ID]; !ok {
					cands = append(cands, mb)
				}
			}
		}
		m.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		add = cands[:min(k-chosen, len(cands))]
		for _, mb := range add {
			m.added[mb.ID], m.out[mb.ID] = mb.Addr, true
		}
	}
	var drop []string
	for id := range m.out {
		if chosen-len(drop) <= k {
			break
		}
		drop = append(drop, id)
		delete(m.out, id)
		delete(m.added, id)
	}
	addrs := make(map[string]string, len(readdr)+len(drop))
	chose := make(map[string]bool, len(readdr))
	for _, id := range readdr {
		addrs[id], chose[id] = m.added[id], m.out[id]
	}
	for _, id := range drop {
		addrs[id] = state[id].Addr
	}
	m.mu.Unlock()

	for _, id := range remove {
		m.n.RemoveNeighbor(id)
	}
	for _, id := range readdr {
		m.n.addNeighbor(id, addrs[id], chose[id])
	}
	var links sync.WaitGroup
	for _, mb := range add {
		if err := m.n.addNeighbor(mb.ID, mb.Addr, true); err != nil {
			m.n.logger.Warn("membership: cannot add neighbour", "peer", mb.ID, "err", err)
			continue
		}
		m.link(&links, mb.ID, mb.Addr, false)
	}
	for _, id := range drop {
		m.n.RemoveNeighbor(id)
		m.link(&links, id, addrs[id], true)
	}
	if wait {
		links.Wait()
	}
}

// inbound takes a member that chose this node as its neighbour (Link).
func (m *membership) inbound(id, addr string, unlink bool) error {
	if m.cfg.StaticNeighborsOnly || id == m.n.Hash {
		return nil
	}
	current := m.n.Neighbors()
	m.mu.Lock()
	_, managed := m.added[id]
	_, isNb := current[id]
	switch {
	case unlink && managed && !m.out[id]:
		delete(m.added, id)
		m.mu.Unlock()
		m.n.RemoveNeighbor(id)
		return nil
	case unlink || (isNb && !managed): // not ours to drop, or already a static neighbour
		m.mu.Unlock()
		return nil
	}
	m.added[id] = addr
	if m.core != nil {
		if _, known := m.core.Member(id); !known {
			// The news of the linker's join has not reached this node
			// yet: a member that links to it is alive, so it becomes a
			// member now. Otherwise the next rebalance would drop the link
			// as one to a stranger, and the linker would be left with a
			// one-way link that nobody pushes on: the orphan of fault 5
			// in issue 10, reproduced by TestOverlayTwoWay.
			m.core.Step(time.Now(), swim.Message{Kind: swim.KindGossip, From: id, FromAddr: addr,
				Updates: []swim.Update{{ID: id, Addr: addr, State: swim.Alive}}})
		}
	}
	m.mu.Unlock()
	m.poke()
	return m.n.AddNeighbor(id, addr)
}
