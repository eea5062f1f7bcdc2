package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
)

// Scenario is everything that determines a run. Two runs of the same
// Scenario produce the same Report (apart from Report.Perf).
type Scenario struct {
	Nodes    int    `json:"nodes"`
	Topology string `json:"topology"` // TopoRandom, TopoRing or TopoFull
	Degree   int    `json:"degree"`   // neighbours per node with TopoRandom

	// Core is every node's protocol configuration; zero fields take the
	// core defaults (Fanout 3, AckTimeout 2 s, MaxAttempts 4, …).
	// core.FanoutAll as Core.Fanout floods.
	Core core.Config `json:"core"`

	// Loss is the probability that one send attempt is lost: half of the
	// losses drop the request, half drop the ACK (the receiver has the
	// message, the sender does not know), as memnet does. Either way the
	// sender times out after Core.AckTimeout.
	Loss float64 `json:"loss"`
	// Latency is the one-way delay of every request and every ACK.
	Latency Latency `json:"latency"`
	// Proc is the time a node takes between accepting a message and
	// starting its forwards. Default 0.
	Proc time.Duration `json:"proc_ns"`

	// Crash is the fraction of nodes (never a publisher) that crash: from
	// then on they drop whatever reaches them, send nothing more, and
	// sends to them time out.
	Crash float64 `json:"crash"`
	// CrashAt is when they crash; 0 means before the first publish.
	CrashAt time.Duration `json:"crash_at_ns"`

	// Partition is the fraction of nodes (chosen at random) on one side of
	// a partition; 0 means none. While it holds, every request and ACK
	// between the two sides is lost.
	Partition float64 `json:"partition"`
	// PartitionAt is when the partition starts (default 0, before the
	// first publish); HealAt when it ends (0: never).
	PartitionAt time.Duration `json:"partition_at_ns"`
	HealAt      time.Duration `json:"heal_at_ns"`

	// Messages is how many messages are published, each from a random
	// node that never crashes.
	Messages int `json:"messages"`
	// Rate spreads the publishes: message i is published at i/Rate
	// seconds. 0 publishes them all at time 0.
	Rate float64 `json:"rate"`

	// Seed drives everything random: the graph, the crashed and
	// partitioned nodes, the publishers, the losses and delays, and (one
	// derived seed each) the nodes' own random choices.
	Seed uint64 `json:"seed"`

	// Tick is how often every live node's decay (core.Node.Tick) runs, as
	// the runtime's DecayInterval does. Default 1 s; negative: never.
	Tick time.Duration `json:"tick_ns"`
	// MaxTime ends the run at this virtual time even if events remain
	// (Summary.Truncated). Default 1 h.
	MaxTime time.Duration `json:"max_time_ns"`
}

// DefaultScenario is the command's default: 1,000 nodes on a random
// 8-regular graph, the core's defaults (push with fanout 3), no loss,
// log-normal delays with a 10 ms median, 10 messages.
func DefaultScenario() Scenario {
	return Scenario{
		Nodes:    1000,
		Topology: TopoRandom,
		Degree:   8,
		Core:     core.Config{Fanout: core.DefaultFanout},
		Latency:  Latency{Kind: LogNormal, A: 10 * time.Millisecond, Sigma: 0.5},
		Messages: 10,
		Seed:     1,
	}
}

// Validate fills defaults and rejects impossible scenarios.
func (s *Scenario) Validate() error {
	if s.Tick == 0 {
		s.Tick = time.Second
	}
	if s.MaxTime == 0 {
		s.MaxTime = time.Hour
	}
	if s.Topology == "" {
		s.Topology = TopoRandom
	}
	var errs []error
	if err := s.Core.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("core config: %w", err))
	}
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(s.Core.MaxAttempts > 255, "core MaxAttempts %d: the simulator allows at most 255", s.Core.MaxAttempts)
	check(s.Nodes < 1, "nodes %d: need at least 1", s.Nodes)
	check(s.Messages < 1, "messages %d: need at least 1", s.Messages)
	check(s.Loss < 0 || s.Loss > 1 || s.Loss != s.Loss, "loss %v: want a probability in [0, 1]", s.Loss)
	check(s.Crash < 0 || s.Crash >= 1 || s.Crash != s.Crash, "crash %v: want a fraction in [0, 1)", s.Crash)
	check(s.Partition < 0 || s.Partition >= 1 || s.Partition != s.Partition, "partition %v: want a fraction in [0, 1)", s.Partition)
	check(s.Rate < 0 || s.Rate != s.Rate, "rate %v: must be ≥ 0", s.Rate)
	check(s.Proc < 0 || s.CrashAt < 0 || s.PartitionAt < 0 || s.HealAt < 0 || s.MaxTime < 0, "times must be ≥ 0")
	check(s.HealAt > 0 && s.HealAt <= s.PartitionAt, "heal at %v must come after the partition at %v", s.HealAt, s.PartitionAt)
	check(s.Latency.Kind == Uniform && s.Latency.A > s.Latency.B, "latency %v: minimum above maximum", s.Latency)
	switch s.Topology {
	case TopoRandom:
		check(s.Nodes > 1 && (s.Degree < 1 || s.Degree >= s.Nodes), "degree %d: want 1 to nodes−1 = %d", s.Degree, s.Nodes-1)
		check(s.Nodes*s.Degree%2 != 0, "nodes × degree = %d × %d must be even for a regular graph", s.Nodes, s.Degree)
	case TopoRing:
	case TopoFull:
		check(s.Nodes > MaxFullNodes, "full topology: %d nodes is too many (at most %d)", s.Nodes, MaxFullNodes)
	default:
		check(true, "topology %q: want random, ring or full", s.Topology)
	}
	return errors.Join(errs...)
}

// FanoutString is the fanout as the flags spell it: a number or "all".
func FanoutString(fanout int) string {
	if fanout == core.FanoutAll {
		return "all"
	}
	return fmt.Sprint(fanout)
}
