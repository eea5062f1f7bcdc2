package gossip

import (
	"context"
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

// MemberState is a member's state as this node sees it.
type MemberState int

// Member states (see docs/DESIGN.md §10). Before the node has started
// membership (Join, or a peer's membership RPC), Members reports its
// neighbours: Alive, or Suspect while their last forward failed.
const (
	MemberAlive MemberState = iota + 1
	MemberSuspect
	MemberDead
	MemberLeft
)

func (s MemberState) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberSuspect:
		return "suspect"
	case MemberDead:
		return "dead"
	case MemberLeft:
		return "left"
	}
	return "unknown"
}

// Member is one member of the cluster as this node knows it.
type Member struct {
	ID          string
	Address     string
	State       MemberState
	Incarnation uint64
	LastHeard   time.Time // last direct message from it; zero when never
	Self        bool
	// MaxPayloadBytes is the largest payload the member accepts (its
	// Config.MaxPayloadBytes); 0 when unknown (a member of an older
	// version). Publish refuses what a live member could not take.
	MaxPayloadBytes int
}

// MemberEventKind is the kind of a membership change.
type MemberEventKind int

// Membership changes reported to WithMemberEventHandler.
const (
	MemberJoined      MemberEventKind = iota + 1 // first heard of, alive
	MemberUpdated                                // new incarnation or address (a restart)
	MemberSuspected                              // missed a probe; dead unless it refutes
	MemberAliveAgain                             // was suspect, dead or left; alive again
	MemberDied                                   // declared dead
	MemberLeftCluster                            // left gracefully
	MemberReaped                                 // dead or left, now forgotten
)

func (k MemberEventKind) String() string { return swim.EventKind(k).String() }

// MemberEvent is one membership change as this node saw it.
type MemberEvent struct {
	Kind   MemberEventKind
	Member Member
	At     time.Time
}

// DefaultJoinPeers was the number of links Join made before membership
// managed the neighbours.
//
// Deprecated: Join now learns the whole membership; the neighbours follow
// MembershipConfig.FanoutExtra.
const DefaultJoinPeers = 4

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
		m.n.logger.Info("member "+e.Kind.String(), "peer", e.Member.ID, "endpoint", e.Member.Addr,
			"state", e.Member.State.String(), "incarnation", e.Member.Incarnation)
	}
	m.updateLimit()
	m.rebalance(false)
	if m.handler != nil {
		for _, e := range evs {
			m.handler(MemberEvent{Kind: MemberEventKind(e.Kind), Member: memberFromSwim(e.Member), At: e.At})
		}
	}
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
	m.mu.Lock()
	members := m.core.Members()
	m.mu.Unlock()
	lim := clusterLimit{bytes: m.n.cfg.MaxPayloadBytes}
	for _, mb := range members[1:] {
		if (mb.State == swim.Alive || mb.State == swim.Suspect) && mb.MaxPayload > 0 && int(min(mb.MaxPayload, 1<<40)) < lim.bytes {
			lim = clusterLimit{bytes: int(mb.MaxPayload), member: mb.ID}
		}
	}
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
	members := m.core.Members()
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

// Members returns this node (Self) first and every member it knows, dead
// and left ones until they are reaped, sorted by id; LastHeard is the
// last direct message from the member. Before membership has started it
// returns the node and its neighbours.
func (n *GossipNode) Members() []Member {
	n.mship.mu.Lock()
	core := n.mship.core
	var ms []swim.Member
	if core != nil {
		ms = core.Members()
	}
	n.mship.mu.Unlock()
	if core != nil {
		out := make([]Member, len(ms))
		for i, sm := range ms {
			out[i] = memberFromSwim(sm)
		}
		return out
	}
	out := []Member{{ID: n.Hash, Address: n.Endpoint, State: MemberAlive, Self: true}}
	stats := n.NeighborStats()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ns := range stats {
		st := MemberAlive
		if n.peerDown[ns.ID] {
			st = MemberSuspect
		}
		out = append(out, Member{ID: ns.ID, Address: ns.Endpoint, State: st, LastHeard: ns.LastAck})
	}
	return out
}

func memberFromSwim(sm swim.Member) Member {
	return Member{ID: sm.ID, Address: sm.Addr, State: MemberState(sm.State), Incarnation: sm.Incarnation, LastHeard: sm.LastHeard, Self: sm.Self,
		MaxPayloadBytes: int(min(sm.MaxPayload, 1<<40))}
}

// MarkReady marks the node ready without joining (the first node of a
// cluster). Ready is reported by Stats and by the daemon's health checks.
func (n *GossipNode) MarkReady() { n.ready.Store(true) }

// Ready reports whether the node has joined a cluster or was marked ready.
func (n *GossipNode) Ready() bool { return n.ready.Load() }

// Join starts membership and joins the cluster through the first seed (an
// address of the node's transport) that answers: the seed adds this node to its membership
// and returns every member it knows, which this node adopts; SWIM then
// spreads the news, probes, and picks the node's neighbours (see
// MembershipConfig). It returns the number of other live members this
// node knows, or ErrNotJoined (with each seed's error) when no seed
// answered; the caller decides whether to retry. Seeds equal to the
// node's own Endpoint are skipped. A seed that has this node's id is
// refused. Join needs the node's Endpoint.
func (n *GossipNode) Join(ctx context.Context, seeds []string) (int, error) {
	if n.Endpoint == "" {
		return 0, errors.New("gossip: Join needs the node's Endpoint (its advertised address)")
	}
	core, err := n.mship.start()
	if err != nil {
		return 0, err
	}
	n.mship.mu.Lock()
	left := core.Leaving()
	n.mship.mu.Unlock()
	if left {
		return 0, errors.New("gossip: Join after Leave: a node that left cannot rejoin; start a new one")
	}
	n.mship.mu.Lock()
	core.SetSeeds(seeds) // tried again after a partition (MembershipConfig.ReconnectInterval)
	n.mship.mu.Unlock()
	var errs []error
	for _, seed := range seeds {
		if seed == n.Endpoint {
			continue
		}
		if err := n.mship.join(ctx, seed); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", seed, err))
			continue
		}
		n.mship.mu.Lock()
		live := core.NumLive() - 1
		n.mship.mu.Unlock()
		n.ready.Store(true)
		n.logger.Info("joined", "seed", seed, "members", live)
		return live, nil
	}
	return 0, fmt.Errorf("%w: %w", ErrNotJoined, errors.Join(errs...))
}

// Leave announces that this node leaves the cluster: its members mark it
// left (not dead, and not after a timeout) and stop probing it. It waits
// until the news has been delivered to GossipNodes members (or all, when
// fewer), or ctx ends (then it returns ctx's error; the news may still
// have spread). It does not close the node: the node keeps answering
// while the news spreads; call Close afterwards (a node that left does
// not rejoin: start a new one, which may reuse the id). Leave on a node
// that never started membership returns nil at once.
func (n *GossipNode) Leave(ctx context.Context) error {
	m := n.mship
	m.mu.Lock()
	if m.core == nil {
		m.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	m.leftFor = min(m.cfg.GossipNodes, m.core.NumLive()-1)
	if m.leftFor <= 0 || m.leftOK >= m.leftFor {
		close(ch)
	} else {
		m.leftCh = ch
	}
	m.core.Leave(time.Now())
	m.mu.Unlock()
	m.poke()
	select {
	case <-ch:
		n.logger.Info("left the cluster")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gossip: Leave: %w", ctx.Err())
	case <-n.ctx.Done():
		return ErrClosed
	}
}
