package gossip

import (
	"fmt"
	"time"

	"github.com/grpc-gossip/gossip/internal/swim"
)

// MembershipConfig tunes membership and failure detection (SWIM with the
// Lifeguard refinements, see docs/DESIGN.md §10). Zero fields take the
// defaults of DefaultLANMembershipConfig in Validate. Durations are wall
// time.
type MembershipConfig struct {
	// ProbeInterval is the time between two probes started by this node
	// (one member per interval, round-robin over a shuffled list);
	// multiplied by the local health multiplier LHM+1. Default 1 s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct ping waits for its ack before
	// IndirectChecks other members are asked to probe; multiplied by LHM+1.
	// Below ProbeInterval. Default 500 ms.
	ProbeTimeout time.Duration
	// IndirectChecks is how many members probe a target that missed its
	// direct ack. Default 3.
	IndirectChecks int
	// SuspicionMult scales the suspicion timeout: it starts at
	// SuspicionMaxTimeoutMult·min and shrinks towards
	// min = SuspicionMult·max(1, log10(N+1))·ProbeInterval as other members
	// independently confirm the suspicion (N: live members). Default 4.
	SuspicionMult int
	// SuspicionMaxTimeoutMult is the ratio of the longest suspicion
	// timeout (no confirmation) to the shortest. Default 6.
	SuspicionMaxTimeoutMult int
	// RetransmitMult bounds how often a node passes one update on:
	// RetransmitMult·ceil(log10(N+1)) times. Default 4.
	RetransmitMult int
	// GossipInterval is how often pending updates go to GossipNodes random
	// members (besides riding on probes). Default 200 ms.
	GossipInterval time.Duration
	// GossipNodes is the number of members per gossip round. Default 3.
	GossipNodes int
	// PushPullInterval is the time between two full-state exchanges with a
	// random member (repairs missed updates, merges healed partitions).
	// Default 30 s.
	PushPullInterval time.Duration
	// DeadReapAfter is how long dead and left members are remembered
	// before they are forgotten (memory stays bounded under churn; a
	// partition that heals within it merges back by itself). Default 5 min.
	DeadReapAfter time.Duration
	// AwarenessMax bounds the local health multiplier (LHM+1 ≤
	// AwarenessMax): how far a slow node may widen its own timeouts.
	// Default 8.
	AwarenessMax int
	// GossipToTheDeadTime is how long members declared dead or left stay
	// among the targets of gossip rounds, so that a live member wrongly
	// declared so hears it and refutes it within a few rounds. Default 30 s.
	GossipToTheDeadTime time.Duration
	// ReconnectInterval is the period of reconnection attempts: a
	// full-state exchange with one of the seeds given to Join or of the
	// members reaped as dead (each backing off while it does not answer),
	// so that a partition longer than DeadReapAfter heals once the network
	// does. Default 30 s.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a reaped dead member is still tried
	// (at most 1,024 of them). Members that left are not. Default 24 h.
	ReconnectTimeout time.Duration

	// FanoutExtra is c in the number of neighbours the node keeps,
	// k = ceil(ln N) + c, chosen at random among alive members; each
	// choice is made two-way (the chosen member links back), so every node
	// has at least k neighbours. ln N + c random links per node is the
	// Erdős–Rényi threshold of connectivity, with probability about
	// exp(−e^−c) (87% for c = 2) for a graph with only those links, and
	// with two-way links every node has at least that many: c = 2 keeps a
	// flood over the neighbours cheap while no single failed neighbour can
	// cut a node off. Default 2 (DefaultFanoutExtra).
	FanoutExtra int
	// StaticNeighborsOnly stops membership from managing the neighbour
	// set: only AddNeighbor's neighbours are used (the seed's ring).
	StaticNeighborsOnly bool
}

// DefaultLANMembershipConfig returns hashicorp/memberlist's LAN tuning:
// failures detected within seconds in clusters of thousands.
func DefaultLANMembershipConfig() MembershipConfig {
	return membershipFromSwim(swim.DefaultLANConfig())
}

// DefaultWANMembershipConfig returns hashicorp/memberlist's WAN tuning:
// probes every 5 s with a 3 s timeout, suspicion multiplier 6, gossip
// every 500 ms to 4 members, push-pull every 60 s.
func DefaultWANMembershipConfig() MembershipConfig {
	return membershipFromSwim(swim.DefaultWANConfig())
}

// DefaultLocalMembershipConfig returns a tuning for loopback clusters and
// tests: probes every 200 ms, gossip every 40 ms, push-pull every 6 s,
// dead members reaped after 1 min.
func DefaultLocalMembershipConfig() MembershipConfig {
	return membershipFromSwim(swim.DefaultLocalConfig())
}

// DefaultFanoutExtra is MembershipConfig.FanoutExtra's default.
const DefaultFanoutExtra = 2

func membershipFromSwim(s swim.Config) MembershipConfig {
	return MembershipConfig{
		ProbeInterval: s.ProbeInterval, ProbeTimeout: s.ProbeTimeout, IndirectChecks: s.IndirectChecks,
		SuspicionMult: s.SuspicionMult, SuspicionMaxTimeoutMult: s.SuspicionMaxTimeoutMult,
		RetransmitMult: s.RetransmitMult, GossipInterval: s.GossipInterval, GossipNodes: s.GossipNodes,
		PushPullInterval: s.PushPullInterval, DeadReapAfter: s.DeadReapAfter, AwarenessMax: s.AwarenessMax,
		GossipToTheDeadTime: s.GossipToTheDeadTime, ReconnectInterval: s.ReconnectInterval, ReconnectTimeout: s.ReconnectTimeout,
		FanoutExtra: DefaultFanoutExtra,
	}
}

func (c *MembershipConfig) swim() swim.Config {
	return swim.Config{
		ProbeInterval: c.ProbeInterval, ProbeTimeout: c.ProbeTimeout, IndirectChecks: c.IndirectChecks,
		SuspicionMult: c.SuspicionMult, SuspicionMaxTimeoutMult: c.SuspicionMaxTimeoutMult,
		RetransmitMult: c.RetransmitMult, GossipInterval: c.GossipInterval, GossipNodes: c.GossipNodes,
		PushPullInterval: c.PushPullInterval, DeadReapAfter: c.DeadReapAfter, AwarenessMax: c.AwarenessMax,
		GossipToTheDeadTime: c.GossipToTheDeadTime, ReconnectInterval: c.ReconnectInterval, ReconnectTimeout: c.ReconnectTimeout,
	}
}

// Validate fills zero fields with the LAN defaults and rejects impossible
// values (a ProbeTimeout not below ProbeInterval, negative numbers).
func (c *MembershipConfig) Validate() error {
	s := c.swim()
	if err := s.Validate(); err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	extra := c.FanoutExtra
	only := c.StaticNeighborsOnly
	*c = membershipFromSwim(s)
	c.FanoutExtra, c.StaticNeighborsOnly = extra, only
	if c.FanoutExtra == 0 {
		c.FanoutExtra = DefaultFanoutExtra
	}
	if c.FanoutExtra < 0 {
		return fmt.Errorf("gossip: %w: FanoutExtra %d must be positive", swim.ErrInvalidConfig, c.FanoutExtra)
	}
	return nil
}

// DetectionBound is the documented upper bound on the time from a
// member's crash until every live member of a cluster of n has marked it
// dead, with healthy nodes: three probe intervals, the longest suspicion
// timeout, and ceil(log2 n)+4 gossip rounds.
func (c *MembershipConfig) DetectionBound(n int) time.Duration {
	s := c.swim()
	return s.DetectionBound(n)
}

// WithMembership sets the node's MembershipConfig (zero fields take the
// LAN defaults).
func WithMembership(c MembershipConfig) Option {
	return optionFunc(func(o *nodeOptions) { o.mship.cfg = c })
}

// WithMemberEventHandler sets a function called with every membership
// change this node sees (a member joins, changes address or incarnation,
// is suspected, is alive again, dies, leaves, is forgotten). Calls come
// from one goroutine of the node, in the order of the changes; while the
// handler runs, membership keeps answering probes but stops starting new
// ones, so it must return quickly (hand the event to a channel). It must
// not call Close.
func WithMemberEventHandler(h func(MemberEvent)) Option {
	return optionFunc(func(o *nodeOptions) { o.mship.handler = h })
}

// membershipOptions are the membership parts of nodeOptions.
type membershipOptions struct {
	cfg     MembershipConfig
	handler func(MemberEvent)
}
