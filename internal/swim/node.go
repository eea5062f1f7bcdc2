package swim

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Node is one member's view of the membership and its failure detector.
// It is not safe for concurrent use: the runtime serialises calls.
type Node struct {
	cfg  Config
	rng  *rand.Rand
	self *member

	members  map[string]*member // every known member, self included
	list     []*member          // the others, in probe order
	probeIdx int
	suspects []*member // members with a running suspicion
	gone     []*member // dead and left members, until reaped
	live     int       // alive and suspect members, self included

	seq       uint64
	probe     *probe
	nextProbe time.Time
	nextGoss  time.Time
	nextSync  time.Time

	// Reconnection (Config.ReconnectInterval): the seeds and the members
	// reaped as dead, tried one at a time so that a partition longer than
	// DeadReapAfter heals.
	seeds      []*former
	formers    []*former // reaped dead members, oldest first
	nextRecon  time.Time
	ignored    uint64 // updates ignored: an incarnation jump past MaxIncarnationJump
	reconnects uint64 // reconnection Syncs sent
	leaving    bool
	lhm        int // local health multiplier (Lifeguard): 0 healthy … AwarenessMax−1

	queue  queue
	out    []Message
	events []Event
}

type member struct {
	Member
	susp *suspicion
}

// suspicion is a running suspicion with Lifeguard's confirmations: its
// timeout starts at hi and shrinks towards lo as independent suspecters
// confirm it, logarithmically: hi − (hi−lo)·log(c+1)/log(k+1) for c
// confirmations of k expected.
type suspicion struct {
	start   time.Time
	lo, hi  time.Duration
	k       int
	origin  string
	confirm map[string]bool
}

func (s *suspicion) deadline() time.Time {
	c := len(s.confirm)
	if s.k < 1 || c >= s.k {
		return s.start.Add(s.lo)
	}
	frac := math.Log(float64(c)+1) / math.Log(float64(s.k)+1)
	t := s.hi - time.Duration(frac*float64(s.hi-s.lo))
	return s.start.Add(max(t, s.lo))
}

// probe is the probe in progress: a direct ping, then, if it is not
// acked by timeoutAt, indirect pings, and a verdict at end.
type probe struct {
	seq        uint64
	target     *member
	start      time.Time
	timeoutAt  time.Time
	end        time.Time
	indirect   bool
	acked      bool
	nacksWant  int
	nacksSeen  int
	targetIncn uint64
}

// former is an address to reconnect to: a seed, or a member reaped as
// dead (id set).
type former struct {
	id, addr string
	reaped   time.Time // when it was reaped; zero for a seed
	next     time.Time // not tried before then (backoff)
	tries    int
}

// maxFormers bounds the reaped members kept for reconnection.
const maxFormers = 1024

// MaxIncarnationJump bounds how far an update may raise a member's
// incarnation above the one this node knows (0 for a member it does not
// know): news beyond it is ignored. An honest member raises its
// incarnation by one per refutation or restart, so it never comes near
// 2^32; without the bound one forged update at incarnation 2^64−1 would
// leave the member unable to refute it, ever (it cannot go higher).
const MaxIncarnationJump = 1 << 32

// ErrEmptyID is returned by New for an empty id or address.
var ErrEmptyID = errors.New("swim: empty member id or address")

// New returns the membership of the member id reachable at addr, alone,
// alive at incarnation 0. now starts its timers.
func New(now time.Time, id, addr string, cfg Config) (*Node, error) {
	if id == "" || addr == "" {
		return nil, ErrEmptyID
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		members: make(map[string]*member),
		queue:   newQueue(),
	}
	n.self = &member{Member: Member{ID: id, Addr: addr, State: Alive, Since: now, Self: true}}
	n.members[id] = n.self
	n.live = 1
	n.nextProbe = now.Add(n.jitter(cfg.ProbeInterval))
	n.nextGoss = now.Add(n.jitter(cfg.GossipInterval))
	n.nextSync = now.Add(cfg.PushPullInterval/2 + n.jitter(cfg.PushPullInterval))
	n.nextRecon = now.Add(cfg.ReconnectInterval/2 + n.jitter(cfg.ReconnectInterval))
	return n, nil
}

// jitter is a random duration in [0, d).
func (n *Node) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(n.rng.Int64N(int64(d)))
}

// scale multiplies d by the local health multiplier (LHM + 1).
func (n *Node) scale(d time.Duration) time.Duration { return d * time.Duration(n.lhm+1) }

// ID returns this node's id.
func (n *Node) ID() string { return n.self.ID }

// Incarnation returns this node's incarnation.
func (n *Node) Incarnation() uint64 { return n.self.Incarnation }

// Health returns the local health multiplier (0 is healthy).
func (n *Node) Health() int { return n.lhm }

// NumLive returns the number of alive and suspect members, self included.
func (n *Node) NumLive() int { return n.live }

// Pending returns the number of updates waiting to be piggybacked.
func (n *Node) Pending() int { return n.queue.len() }

// Ready returns and clears the messages to send and the events to report.
func (n *Node) Ready() ([]Message, []Event) {
	m, e := n.out, n.events
	n.out, n.events = nil, nil
	return m, e
}

// Members returns this node first, then every other known member (dead
// and left ones until reaped) sorted by id.
func (n *Node) Members() []Member {
	out := make([]Member, 0, len(n.members))
	out = append(out, n.self.Member)
	start := len(out)
	for _, m := range n.list {
		out = append(out, m.Member)
	}
	slices.SortFunc(out[start:], func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Each calls f with this node, then every other known member (dead and
// left ones until reaped) in the probe order — unsorted, without copying
// the list: for callers that only scan it.
func (n *Node) Each(f func(Member)) {
	f(n.self.Member)
	for _, m := range n.list {
		f(m.Member)
	}
}

// Member returns the member id as this node sees it.
func (n *Node) Member(id string) (Member, bool) {
	m := n.members[id]
	if m == nil {
		return Member{}, false
	}
	return m.Member, true
}

// Join returns the Sync request to send to a seed at addr: this node's
// full state, marked as a join. Its reply goes to Step.
func (n *Node) Join(addr string) Message {
	return Message{Kind: KindSync, From: n.self.ID, FromAddr: n.self.Addr, ToAddr: addr, Join: true, Updates: n.fullState()}
}

// Leave marks this node as left (incarnation raised, so that the news
// beats every earlier one) and queues the news; probing stops. The runtime
// keeps ticking until LeaveSpread reports that the news went out.
func (n *Node) Leave(now time.Time) {
	if n.leaving {
		return
	}
	n.leaving = true
	n.self.Incarnation++
	n.self.State, n.self.Since = Left, now
	n.probe = nil
	n.queue.push(n.selfUpdate())
	n.gossip(now) // at once, not at the next gossip round
}

// Leaving reports whether Leave was called.
func (n *Node) Leaving() bool { return n.leaving }

// LeaveSpread reports whether the leave announced by Leave has been sent
// to GossipNodes members (or to every other live member when there are
// fewer), or has used up its retransmissions.
func (n *Node) LeaveSpread() bool {
	if !n.leaving {
		return false
	}
	t, pending := n.queue.transmits(n.self.ID)
	return !pending || t >= min(n.cfg.GossipNodes, n.live-1)
}

func (n *Node) selfUpdate() Update {
	return Update{ID: n.self.ID, Addr: n.self.Addr, State: n.self.State, Incarnation: n.self.Incarnation, From: n.self.ID, MaxPayload: n.self.MaxPayload}
}

// SetMaxPayload sets what this member says it accepts (Member.MaxPayload);
// call it before the first message goes out.
func (n *Node) SetMaxPayload(v uint64) { n.self.MaxPayload = v }

func (n *Node) fullState() []Update {
	out := make([]Update, 0, len(n.members))
	out = append(out, n.selfUpdate())
	for _, m := range n.list {
		from := ""
		if m.susp != nil {
			from = m.susp.origin
		}
		out = append(out, Update{ID: m.ID, Addr: m.Addr, State: m.State, Incarnation: m.Incarnation, From: from, MaxPayload: m.MaxPayload})
	}
	return out
}

func (n *Node) piggyback() []Update {
	return n.queue.take(n.cfg.MaxPiggyback, n.cfg.RetransmitLimit(n.live))
}

// Next returns when Tick next has something to do.
func (n *Node) Next() time.Time {
	t := n.nextGoss
	if n.nextSync.Before(t) {
		t = n.nextSync
	}
	if len(n.seeds)+len(n.formers) > 0 && n.nextRecon.Before(t) {
		t = n.nextRecon
	}
	if p := n.probe; p != nil {
		if !p.indirect && !p.acked && p.timeoutAt.Before(t) {
			t = p.timeoutAt
		}
		if p.end.Before(t) {
			t = p.end
		}
	} else if !n.leaving && n.nextProbe.Before(t) {
		t = n.nextProbe
	}
	for _, m := range n.suspects {
		if d := m.susp.deadline(); d.Before(t) {
			t = d
		}
	}
	for _, m := range n.gone {
		if d := m.Since.Add(n.cfg.DeadReapAfter); d.Before(t) {
			t = d
		}
	}
	return t
}

// Tick runs every timer due at now.
func (n *Node) Tick(now time.Time) {
	if p := n.probe; p != nil {
		if !p.acked && !p.indirect && !now.Before(p.timeoutAt) {
			n.indirectProbe(now, p)
		}
		if !now.Before(p.end) {
			n.finishProbe(now, p)
		}
	}
	if n.probe == nil && !n.leaving && !now.Before(n.nextProbe) {
		n.startProbe(now)
	}
	for i := 0; i < len(n.suspects); i++ {
		m := n.suspects[i]
		if !now.Before(m.susp.deadline()) {
			n.apply(now, m, Update{ID: m.ID, Addr: m.Addr, State: Dead, Incarnation: m.Incarnation, From: n.self.ID})
			i-- // apply removed it from suspects
		}
	}
	for i := 0; i < len(n.gone); i++ {
		if m := n.gone[i]; !now.Before(m.Since.Add(n.cfg.DeadReapAfter)) {
			n.reap(now, m)
			i--
		}
	}
	if !now.Before(n.nextGoss) {
		n.nextGoss = now.Add(n.cfg.GossipInterval)
		n.gossip(now)
	}
	if !now.Before(n.nextSync) {
		n.nextSync = now.Add(n.cfg.PushPullInterval)
		n.pushPull()
	}
	if !now.Before(n.nextRecon) {
		n.nextRecon = now.Add(n.cfg.ReconnectInterval)
		n.reconnect(now)
	}
}

// startProbe pings the next member in the probe order.
func (n *Node) startProbe(now time.Time) {
	n.nextProbe = now.Add(n.scale(n.cfg.ProbeInterval))
	target := n.nextTarget()
	if target == nil {
		return
	}
	n.seq++
	n.probe = &probe{
		seq: n.seq, target: target, start: now, targetIncn: target.Incarnation,
		timeoutAt: now.Add(n.scale(n.cfg.ProbeTimeout)),
		end:       now.Add(n.scale(n.cfg.ProbeInterval)),
	}
	ups := n.piggyback()
	if target.State == Suspect {
		// Lifeguard's buddy system: tell a suspect it is suspected, so it
		// refutes at once instead of waiting for the gossip to reach it.
		ups = append([]Update{{ID: target.ID, Addr: target.Addr, State: Suspect, Incarnation: target.Incarnation, From: target.susp.origin}}, ups...)
	}
	n.send(Message{Kind: KindPing, To: target.ID, ToAddr: target.Addr, Target: target.ID, Seq: n.seq,
		Timeout: n.probe.end.Sub(now), Updates: ups})
}

// nextTarget walks the probe order, reshuffling it after each full pass,
// and returns the next alive or suspect member, nil when there is none.
func (n *Node) nextTarget() *member {
	for range len(n.list) + 1 {
		if n.probeIdx >= len(n.list) {
			n.probeIdx = 0
			n.rng.Shuffle(len(n.list), func(i, j int) { n.list[i], n.list[j] = n.list[j], n.list[i] })
			if len(n.list) == 0 {
				return nil
			}
		}
		m := n.list[n.probeIdx]
		n.probeIdx++
		if !m.State.gone() {
			return m
		}
	}
	return nil
}

// indirectProbe asks IndirectChecks alive members to ping the target.
func (n *Node) indirectProbe(now time.Time, p *probe) {
	p.indirect = true
	helpers := n.randomMembers(n.cfg.IndirectChecks, func(m *member) bool { return m.State == Alive && m != p.target })
	timeout := p.end.Sub(now) * 4 / 5 // leave the relay time to answer within the interval
	for _, h := range helpers {
		n.send(Message{Kind: KindPingReq, To: h.ID, ToAddr: h.Addr, Seq: p.seq, Target: p.target.ID, TargetAddr: p.target.Addr,
			Timeout: timeout, Updates: n.piggyback()})
	}
	p.nacksWant = len(helpers)
}

// finishProbe gives the verdict at the end of the probe interval: no ack
// means suspicion. The local health multiplier rises by one for a probe
// that failed without nacks to explain it (or by each missing nack): the
// likelier explanation is then that this node is slow, not the target.
func (n *Node) finishProbe(now time.Time, p *probe) {
	n.probe = nil
	if p.acked {
		return
	}
	if p.nacksWant > 0 {
		n.adjustHealth(p.nacksWant - p.nacksSeen)
	} else {
		n.adjustHealth(1)
	}
	t := p.target
	if n.members[t.ID] != t || t.State.gone() || t.Incarnation != p.targetIncn {
		return // reaped, replaced, declared or refuted meanwhile
	}
	u := Update{ID: t.ID, Addr: t.Addr, State: Suspect, Incarnation: t.Incarnation, From: n.self.ID}
	if t.State == Suspect {
		// Already suspected: this failed probe is one more independent
		// suspicion (a confirmation unless this node started it), not a
		// new one. Applying it would restart the timer and drop the
		// confirmations, and a suspect probed again more often than its
		// timeout would then never be declared dead (as memberlist, which
		// only confirms a suspect).
		n.confirm(t, u)
		return
	}
	n.apply(now, t, u)
}

func (n *Node) adjustHealth(delta int) {
	n.lhm = min(max(n.lhm+delta, 0), n.cfg.AwarenessMax-1)
}

// gossip sends the pending updates to GossipNodes random live members.
func (n *Node) gossip(now time.Time) {
	// One member declared dead or left less than GossipToTheDeadTime ago
	// is told its own state, whatever is pending: one that is alive after
	// all (a forged "left", a suspicion that ran out while it was cut off)
	// learns the news and refutes it, although nobody probes it any more.
	// The news goes outside the piggyback queue, so that telling the dead
	// does not use up the transmissions the live need.
	if gone := n.randomMembers(1, func(m *member) bool {
		return m.State.gone() && now.Sub(m.Since) < n.cfg.GossipToTheDeadTime
	}); len(gone) == 1 {
		m := gone[0]
		n.send(Message{Kind: KindGossip, To: m.ID, ToAddr: m.Addr, Updates: []Update{
			{ID: m.ID, Addr: m.Addr, State: m.State, Incarnation: m.Incarnation, From: n.self.ID, MaxPayload: m.MaxPayload}}})
	}
	if n.queue.len() == 0 {
		return
	}
	for _, m := range n.randomMembers(n.cfg.GossipNodes, func(m *member) bool { return !m.State.gone() }) {
		ups := n.piggyback()
		if len(ups) == 0 {
			return
		}
		n.send(Message{Kind: KindGossip, To: m.ID, ToAddr: m.Addr, Updates: ups})
	}
}

// pushPull sends this node's full state to one random member that has not
// left: alive, suspect or dead (a dead one may be on the other side of a
// healed partition; if it answers, the exchange revives it).
func (n *Node) pushPull() {
	ms := n.randomMembers(1, func(m *member) bool { return m.State != Left })
	if len(ms) == 0 {
		return
	}
	n.send(Message{Kind: KindSync, To: ms[0].ID, ToAddr: ms[0].Addr, Updates: n.fullState()})
}

// randomMembers picks up to k distinct members (never this node) that ok
// accepts, uniformly at random.
func (n *Node) randomMembers(k int, ok func(*member) bool) []*member {
	if k <= 0 || len(n.list) == 0 {
		return nil
	}
	var out []*member
	if len(n.list) <= 4*k+8 {
		for _, m := range n.list {
			if ok(m) {
				out = append(out, m)
			}
		}
		n.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out[:min(k, len(out))]
	}
	for tries := 0; len(out) < k && tries < 3*len(n.list); tries++ {
		m := n.list[n.rng.IntN(len(n.list))]
		if ok(m) && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

func (n *Node) send(m Message) {
	m.From, m.FromAddr = n.self.ID, n.self.Addr
	n.out = append(n.out, m)
}

// Step handles one message from another member. For a Ping it returns the
// Ack, for a Sync the SyncReply, and for a PingReq the Ping the runtime
// must send to the target (then relay its Ack, or a Nack after the
// PingReq's Timeout, to the requester); ok is false when there is nothing
// to answer (a Ping meant for another id: the sender must see no ack).
func (n *Node) Step(now time.Time, m Message) (reply Message, ok bool) {
	defer n.touch(now, m.From) // after the merge, which may add the sender
	switch m.Kind {
	case KindPing:
		if m.Target != "" && m.Target != n.self.ID {
			return Message{}, false
		}
		n.mergeAll(now, m.Updates, false)
		return n.reply(m, Message{Kind: KindAck, Seq: m.Seq, Updates: n.piggyback()}), true
	case KindPingReq:
		n.mergeAll(now, m.Updates, false)
		n.seq++
		return n.reply(m, Message{Kind: KindPing, To: m.Target, ToAddr: m.TargetAddr, Target: m.Target, Seq: n.seq, Updates: n.piggyback()}), true
	case KindAck:
		n.mergeAll(now, m.Updates, false)
		if p := n.probe; p != nil && m.Seq == p.seq && !p.acked {
			p.acked = true
			if m.From == p.target.ID && !p.indirect {
				n.adjustHealth(-1)
			}
		}
	case KindNack:
		n.mergeAll(now, m.Updates, false)
		if p := n.probe; p != nil && m.Seq == p.seq {
			p.nacksSeen++
		}
	case KindGossip:
		n.mergeAll(now, m.Updates, false)
	case KindSync:
		n.mergeAll(now, m.Updates, true)
		return n.reply(m, Message{Kind: KindSyncReply, Updates: n.fullState()}), true
	case KindSyncReply:
		n.mergeAll(now, m.Updates, true)
	}
	return Message{}, false
}

// reply addresses r to the sender of m (a Ping built for a PingReq keeps
// its own destination).
func (n *Node) reply(m, r Message) Message {
	r.From, r.FromAddr = n.self.ID, n.self.Addr
	if r.To == "" && r.ToAddr == "" {
		r.To, r.ToAddr = m.From, m.FromAddr
	}
	return r
}

// touch records a direct message from id.
func (n *Node) touch(now time.Time, id string) {
	if m := n.members[id]; m != nil && m != n.self {
		m.LastHeard = now
	}
}

func (n *Node) mergeAll(now time.Time, us []Update, fromSync bool) {
	for _, u := range us {
		n.merge(now, u, fromSync)
	}
}

// merge applies one piece of news if it is newer than what this node
// knows (see the package comment for the rules).
func (n *Node) merge(now time.Time, u Update, fromSync bool) {
	if u.ID == "" || u.State < Alive || u.State > Left {
		return
	}
	if u.ID == n.self.ID {
		n.refute(u)
		return
	}
	m := n.members[u.ID]
	var known uint64
	if m != nil {
		known = m.Incarnation
	}
	if u.Incarnation > known && u.Incarnation-known > MaxIncarnationJump {
		n.ignored++
		return
	}
	if m == nil {
		if u.State != Alive && u.State != Suspect || u.Addr == "" {
			return // news of the death of a stranger: nothing to forget
		}
		m = &member{Member: Member{ID: u.ID, Addr: u.Addr, State: Alive, Incarnation: u.Incarnation, Since: now, MaxPayload: u.MaxPayload}}
		n.members[u.ID] = m
		n.forget(u.ID, u.Addr) // a reaped member (or a seed) is back
		n.list = append(n.list, m)
		// A newcomer is inserted at a random place in the probe order,
		// as memberlist does, so it is probed within one pass.
		i := n.rng.IntN(len(n.list))
		n.list[i], n.list[len(n.list)-1] = n.list[len(n.list)-1], n.list[i]
		n.live++
		n.emit(now, EventJoin, m)
		n.queue.push(Update{ID: u.ID, Addr: u.Addr, State: Alive, Incarnation: u.Incarnation, MaxPayload: u.MaxPayload})
		if u.State == Alive {
			return
		}
	}
	if fromSync && u.State == Dead {
		// A full state says dead: suspect instead, so the member gets
		// its chance to refute (memberlist does the same).
		u.State = Suspect
	}
	switch {
	case u.Incarnation < m.Incarnation:
		return
	case u.Incarnation == m.Incarnation:
		if m.State == Suspect && u.State == Suspect {
			n.confirm(m, u)
			return
		}
		if u.State.rank() <= m.State.rank() {
			return
		}
	}
	n.apply(now, m, u)
}

// confirm counts an independent suspicion of a suspect member; a new
// confirmation is passed on.
func (n *Node) confirm(m *member, u Update) {
	s := m.susp
	if s == nil || u.From == "" || u.From == s.origin || s.confirm[u.From] {
		return
	}
	s.confirm[u.From] = true
	n.queue.push(u)
}

// apply moves m to the state of u (which is newer) and passes the news on.
func (n *Node) apply(now time.Time, m *member, u Update) {
	prev := m.State
	if u.Addr != "" {
		m.Addr = u.Addr
	}
	if u.MaxPayload != 0 {
		m.MaxPayload = u.MaxPayload
	}
	m.Incarnation = u.Incarnation
	n.setState(now, m, u.State, u.From)
	n.queue.push(Update{ID: m.ID, Addr: m.Addr, State: u.State, Incarnation: u.Incarnation, From: u.From, MaxPayload: m.MaxPayload})
	switch {
	case u.State == Alive && prev == Alive: // a new incarnation, maybe a new address
		n.emit(now, EventUpdate, m)
	case u.State == Alive:
		n.emit(now, EventAliveAgain, m)
	case u.State == Suspect && prev != Suspect:
		n.emit(now, EventSuspect, m)
	case u.State == Dead:
		n.emit(now, EventDead, m)
	case u.State == Left:
		n.emit(now, EventLeave, m)
	}
}

// setState changes m's state and keeps the counters and timer lists right.
func (n *Node) setState(now time.Time, m *member, st State, from string) {
	prev := m.State
	if prev == st && st != Suspect {
		return
	}
	live := func(s State) bool { return !s.gone() }
	switch {
	case live(prev) && !live(st):
		n.live--
	case !live(prev) && live(st):
		n.live++
	}
	if prev == Suspect {
		n.suspects = remove(n.suspects, m)
		m.susp = nil
	}
	if prev.gone() {
		n.gone = remove(n.gone, m)
	}
	m.State, m.Since = st, now
	switch {
	case st == Suspect:
		lo, hi := n.cfg.SuspicionTimeouts(n.live)
		k := n.cfg.SuspicionMult - 2
		if n.live-2 < k {
			k = 0 // too few members to expect that many confirmations
		}
		m.susp = &suspicion{start: now, lo: lo, hi: hi, k: k, origin: from, confirm: make(map[string]bool)}
		n.suspects = append(n.suspects, m)
	case st.gone():
		n.gone = append(n.gone, m)
	}
}

// refute answers news about this node: anything but "alive at my
// address" at an incarnation ≥ mine is contradicted by raising the
// incarnation above it. Suspicion or death of this node also raises the
// local health multiplier (Lifeguard: being suspected hints that this
// node is the slow one).
func (n *Node) refute(u Update) {
	if n.leaving || u.Incarnation < n.self.Incarnation {
		return
	}
	if u.Incarnation-n.self.Incarnation > MaxIncarnationJump {
		n.ignored++ // forged: no member accepts it either (merge)
		return
	}
	if u.State == Alive && u.Addr == n.self.Addr && u.Incarnation == n.self.Incarnation {
		return
	}
	n.self.Incarnation = u.Incarnation + 1
	if u.State == Suspect || u.State == Dead {
		n.adjustHealth(1)
	}
	n.queue.push(n.selfUpdate())
}

// reap forgets a dead or left member. A dead one is kept as an address
// to reconnect to (a partition may be what killed it).
func (n *Node) reap(now time.Time, m *member) {
	if m.State == Dead {
		if len(n.formers) == maxFormers {
			n.formers = slices.Delete(n.formers, 0, 1)
		}
		n.formers = append(n.formers, &former{id: m.ID, addr: m.Addr, reaped: now, next: now})
	}
	n.gone = remove(n.gone, m)
	delete(n.members, m.ID)
	if i := slices.Index(n.list, m); i >= 0 {
		n.list = slices.Delete(n.list, i, i+1)
		if i < n.probeIdx {
			n.probeIdx--
		}
	}
	n.emit(now, EventReap, m)
}

func (n *Node) emit(now time.Time, k EventKind, m *member) {
	n.events = append(n.events, Event{Kind: k, Member: m.Member, At: now})
}

func remove(s []*member, m *member) []*member {
	if i := slices.Index(s, m); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// SetSeeds sets the addresses tried by reconnection besides the reaped
// members: the seeds the node joined through. Its own address is skipped.
func (n *Node) SetSeeds(addrs []string) {
	n.seeds = n.seeds[:0]
	for _, a := range addrs {
		if a != "" && a != n.self.Addr && !slices.ContainsFunc(n.seeds, func(f *former) bool { return f.addr == a }) {
			n.seeds = append(n.seeds, &former{addr: a})
		}
	}
}

// forget drops a reaped member from the reconnection list once it is
// known again.
func (n *Node) forget(id, addr string) {
	n.formers = slices.DeleteFunc(n.formers, func(f *former) bool { return f.id == id || f.addr == addr })
}

// reconnect sends this node's full state (a Sync, as push-pull does) to
// one address among the seeds and the reaped members that is due: one
// that answers merges the two views, so two sides of a partition that
// outlasted DeadReapAfter find each other. A seed whose address is a live
// member's is skipped (push-pull covers it). Each try backs the address
// off: the next one waits ReconnectInterval × 2^tries, up to 32
// intervals; reaped members are dropped after ReconnectTimeout.
func (n *Node) reconnect(now time.Time) {
	n.formers = slices.DeleteFunc(n.formers, func(f *former) bool { return now.Sub(f.reaped) >= n.cfg.ReconnectTimeout })
	live := make(map[string]bool, len(n.list))
	for _, m := range n.list {
		if !m.State.gone() {
			live[m.Addr] = true
		}
	}
	var due []*former
	for _, f := range n.seeds {
		if !live[f.addr] && !now.Before(f.next) {
			due = append(due, f)
		}
	}
	for _, f := range n.formers {
		if !live[f.addr] && !now.Before(f.next) {
			due = append(due, f)
		}
	}
	if len(due) == 0 {
		return
	}
	f := due[n.rng.IntN(len(due))]
	f.tries++
	f.next = now.Add(n.cfg.ReconnectInterval << min(f.tries, 5))
	n.reconnects++
	n.send(Message{Kind: KindSync, To: f.id, ToAddr: f.addr, Updates: n.fullState()})
}

// Stats are counters of the membership protocol.
type Stats struct {
	// Ignored counts updates ignored because they raised an incarnation
	// by more than MaxIncarnationJump.
	Ignored uint64
	// Reconnects counts reconnection attempts (Syncs to seeds and reaped
	// members).
	Reconnects uint64
	// Formers is the number of reaped members kept for reconnection.
	Formers int
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{Ignored: n.ignored, Reconnects: n.reconnects, Formers: len(n.formers)}
}
