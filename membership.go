package gossip

import (
	"context"
	"errors"
	"fmt"
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
		n.saveMembers() // at once: a node killed right after joining still rejoins (persist.go)
		return live, nil
	}
	return 0, fmt.Errorf("%w: %w", ErrNotJoined, errors.Join(errs...))
}

// SetSeeds replaces the addresses that membership's reconnection tries
// besides the members reaped as dead (MembershipConfig.ReconnectInterval:
// one full-state exchange per interval with a seed that is not a live
// member, each seed backing off while it does not answer). Join sets them
// to its seeds; a caller whose seeds move (host names or DNS SRV records
// re-resolved, as gossipd does) calls SetSeeds with the new addresses, and
// a first node that joined nobody calls it so that it still finds a
// cluster that formed elsewhere. It starts membership if Join has not.
// Addresses equal to the node's Endpoint are skipped.
func (n *GossipNode) SetSeeds(seeds []string) error {
	if n.Endpoint == "" {
		return errors.New("gossip: SetSeeds needs the node's Endpoint (its advertised address)")
	}
	core, err := n.mship.start()
	if err != nil {
		return err
	}
	n.mship.mu.Lock()
	core.SetSeeds(seeds)
	n.mship.mu.Unlock()
	n.mship.poke()
	return nil
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
