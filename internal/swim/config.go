package swim

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config tunes a Node. Zero fields take their defaults in Validate (the
// LAN preset). Every duration is wall time as the runtime measures it.
type Config struct {
	// ProbeInterval is the time between two probes started by this node
	// (one member probed per interval, round-robin over a shuffled list).
	// It is multiplied by the local health multiplier (LHM + 1). Default 1 s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct ping waits for its ack before the
	// node asks IndirectChecks other members to probe the target; also
	// multiplied by (LHM + 1). It must be below ProbeInterval. Default 500 ms.
	ProbeTimeout time.Duration
	// IndirectChecks is k, the number of members asked to probe a target
	// that missed its direct ack. Default 3.
	IndirectChecks int
	// SuspicionMult scales the suspicion timeout:
	//
	//	min = SuspicionMult · max(1, log10(N+1)) · ProbeInterval
	//	max = SuspicionMaxTimeoutMult · min
	//
	// where N is the number of members this node considers alive or
	// suspect, itself included. A suspicion starts at max and shrinks
	// towards min as independent confirmations arrive (Lifeguard). It
	// also sets the confirmations expected: SuspicionMult − 2. Default 4.
	SuspicionMult int
	// SuspicionMaxTimeoutMult is max/min of the suspicion timeout. Default 6.
	SuspicionMaxTimeoutMult int
	// RetransmitMult bounds how many times this node piggybacks one
	// update: RetransmitMult · ceil(log10(N+1)). Default 4.
	RetransmitMult int
	// GossipInterval is how often the node sends its pending updates to
	// GossipNodes random members, besides piggybacking them on probes.
	// Default 200 ms.
	GossipInterval time.Duration
	// GossipNodes is how many members each gossip round goes to. Default 3.
	GossipNodes int
	// MaxPiggyback bounds the updates carried by one message. Default 32.
	MaxPiggyback int
	// PushPullInterval is the time between two full-state exchanges
	// (Sync) with one random member, which repairs whatever piggybacking
	// missed. Chosen among alive, suspect and not-yet-reaped dead members,
	// so that two sides of a healed partition find each other again.
	// Default 30 s.
	PushPullInterval time.Duration
	// DeadReapAfter is how long a dead or left member is kept (so that
	// stale news about it is recognised and a healed partition can merge)
	// before it is forgotten; memory stays bounded under churn. Default 5 min.
	DeadReapAfter time.Duration
	// AwarenessMax bounds the local health multiplier: LHM ∈ [0,
	// AwarenessMax−1]; timeouts and the probe interval are multiplied by
	// LHM+1. Default 8.
	AwarenessMax int
	// GossipToTheDeadTime is how long a member declared dead or left
	// stays among the targets of gossip rounds (memberlist's setting of
	// that name): a live member wrongly declared so hears the news and
	// refutes it within a few gossip rounds, even though nobody probes it
	// any more. Default 30 s.
	GossipToTheDeadTime time.Duration
	// ReconnectInterval is the period of reconnection attempts: a Sync
	// (push-pull) to one address among the seeds (SetSeeds) and the
	// members that were reaped as dead, so that a partition longer than
	// DeadReapAfter heals once the network does (serf's reconnect).
	// Each address backs off (doubling up to 32 intervals) while it does
	// not answer. Default 30 s.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a reaped dead member's address is
	// still tried; at most maxFormers addresses are kept (the oldest go
	// first). Members that left gracefully are never tried. Default 24 h.
	ReconnectTimeout time.Duration
	// Seed seeds the node's random choices (PCG). The runtime picks it.
	Seed uint64
}

// DefaultLANConfig is memberlist's LAN tuning: detection within a few
// seconds on a LAN of thousands of members.
func DefaultLANConfig() Config {
	return Config{
		ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, IndirectChecks: 3,
		SuspicionMult: 4, SuspicionMaxTimeoutMult: 6, RetransmitMult: 4,
		GossipInterval: 200 * time.Millisecond, GossipNodes: 3, MaxPiggyback: 32,
		PushPullInterval: 30 * time.Second, DeadReapAfter: 5 * time.Minute, AwarenessMax: 8,
		GossipToTheDeadTime: 30 * time.Second, ReconnectInterval: 30 * time.Second, ReconnectTimeout: 24 * time.Hour,
	}
}

// DefaultWANConfig is memberlist's WAN tuning: slower probes and longer
// timeouts for links with high and variable latency.
func DefaultWANConfig() Config {
	c := DefaultLANConfig()
	c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = 5*time.Second, 3*time.Second, 6
	c.GossipInterval, c.GossipNodes, c.PushPullInterval = 500*time.Millisecond, 4, 60*time.Second
	c.GossipToTheDeadTime, c.ReconnectInterval = 60*time.Second, 60*time.Second
	return c
}

// DefaultLocalConfig is for loopback clusters and tests: everything five
// times faster than LAN.
func DefaultLocalConfig() Config {
	c := DefaultLANConfig()
	c.ProbeInterval, c.ProbeTimeout = 200*time.Millisecond, 100*time.Millisecond
	c.GossipInterval, c.PushPullInterval = 40*time.Millisecond, 6*time.Second
	c.DeadReapAfter = time.Minute
	c.GossipToTheDeadTime, c.ReconnectInterval = 6*time.Second, 6*time.Second
	return c
}

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("invalid membership config")

// Validate fills zero fields from DefaultLANConfig and rejects impossible
// combinations.
func (c *Config) Validate() error {
	d := DefaultLANConfig()
	setD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setI := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setD(&c.ProbeInterval, d.ProbeInterval)
	setD(&c.ProbeTimeout, d.ProbeTimeout)
	setI(&c.IndirectChecks, d.IndirectChecks)
	setI(&c.SuspicionMult, d.SuspicionMult)
	setI(&c.SuspicionMaxTimeoutMult, d.SuspicionMaxTimeoutMult)
	setI(&c.RetransmitMult, d.RetransmitMult)
	setD(&c.GossipInterval, d.GossipInterval)
	setI(&c.GossipNodes, d.GossipNodes)
	setI(&c.MaxPiggyback, d.MaxPiggyback)
	setD(&c.PushPullInterval, d.PushPullInterval)
	setD(&c.DeadReapAfter, d.DeadReapAfter)
	setI(&c.AwarenessMax, d.AwarenessMax)
	setD(&c.GossipToTheDeadTime, d.GossipToTheDeadTime)
	setD(&c.ReconnectInterval, d.ReconnectInterval)
	setD(&c.ReconnectTimeout, d.ReconnectTimeout)
	switch {
	case c.ProbeInterval < 0 || c.ProbeTimeout < 0 || c.GossipInterval < 0 || c.PushPullInterval < 0 || c.DeadReapAfter < 0 ||
		c.GossipToTheDeadTime < 0 || c.ReconnectInterval < 0 || c.ReconnectTimeout < 0:
		return fmt.Errorf("%w: durations must be positive", ErrInvalidConfig)
	case c.ProbeTimeout >= c.ProbeInterval:
		return fmt.Errorf("%w: ProbeTimeout %v must be below ProbeInterval %v (indirect probes need the rest of the interval)", ErrInvalidConfig, c.ProbeTimeout, c.ProbeInterval)
	case c.IndirectChecks < 0 || c.SuspicionMult < 1 || c.SuspicionMaxTimeoutMult < 1 || c.RetransmitMult < 1 ||
		c.GossipNodes < 1 || c.MaxPiggyback < 1 || c.AwarenessMax < 1:
		return fmt.Errorf("%w: IndirectChecks ≥ 0 and SuspicionMult, SuspicionMaxTimeoutMult, RetransmitMult, GossipNodes, MaxPiggyback, AwarenessMax ≥ 1", ErrInvalidConfig)
	}
	return nil
}

// SuspicionTimeouts returns the suspicion timeout bounds for a cluster of
// n members: min = SuspicionMult · max(1, log10(n+1)) · ProbeInterval and
// max = SuspicionMaxTimeoutMult · min.
func (c *Config) SuspicionTimeouts(n int) (lo, hi time.Duration) {
	scale := max(1, math.Log10(float64(n+1)))
	lo = time.Duration(float64(c.SuspicionMult) * scale * float64(c.ProbeInterval))
	return lo, time.Duration(c.SuspicionMaxTimeoutMult) * lo
}

// RetransmitLimit is how many times one update is piggybacked in a
// cluster of n members: RetransmitMult · ceil(log10(n+1)).
func (c *Config) RetransmitLimit(n int) int {
	return c.RetransmitMult * int(math.Ceil(math.Log10(float64(n+1))))
}

// DetectionBound is an upper bound on the time from a member's crash to
// the moment every live member has marked it dead, for a cluster of n
// members with healthy nodes (LHM 0) and no confirmations (the slowest
// suspicion): the crashed member is probed by someone within two probe
// intervals with high probability, the probe fails after one interval,
// the suspicion runs to its maximum, and the dead update spreads through
// the gossip rounds (ceil(log2 n)+4 of them, a generous epidemic bound).
func (c *Config) DetectionBound(n int) time.Duration {
	_, hi := c.SuspicionTimeouts(n)
	spread := time.Duration(math.Ceil(math.Log2(float64(max(n, 2))))+4) * c.GossipInterval
	return 3*c.ProbeInterval + hi + spread
}
