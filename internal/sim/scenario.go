package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
)

// Protocols accepted by Scenario.Protocol.
const (
	// ProtoPlumtree is what users run: every neighbour is a stream peer
	// (core.KindStream); messages travel as real pb.Envelopes built by
	// core.Stream and handled by core.Decode, Stream.Receive and
	// Node.Step, with Plumtree's eager and lazy push, grafts, prunes and
	// anti-entropy digests on the runtime's timers (plumtree.go).
	ProtoPlumtree = "plumtree"
	// ProtoFlood is the seed's unary push to every neighbour but the
	// sender and the origin (core.FanoutAll), with per-message ACKs and
	// retries: what gossipd ran before streaming.
	ProtoFlood = "flood"
	// ProtoPush is the seed's unary push to Core.Fanout random
	// neighbours (the library's default fanout 3).
	ProtoPush = "push"
)

// Membership repair modes accepted by Scenario.Repair (ProtoPlumtree over
// TopoMembership only). See overlay.go and swim.go.
const (
	// RepairSwim drives the real SWIM core (internal/swim) on every node,
	// over the same simulated links, and rebalances each node's
	// neighbours on its membership events as the runtime does. Its
	// memory grows with N² (every node knows every member): at most
	// MaxSwimNodes nodes.
	RepairSwim = "swim"
	// RepairModel models failure detection: a dead neighbour is dropped
	// after a delay drawn from the detection times that the real SWIM core
	// measured at min(N, CalibrationNodes) nodes with the same failure
	// fraction (scaled by the suspicion timeout's log10 N growth), and
	// replaced by a random member not known dead, as the runtime's
	// rebalance does.
	RepairModel = "model"
	// RepairNone keeps the overlay as built: only the trees, the lazy
	// links, grafts and anti-entropy repair.
	RepairNone = "none"
	// RepairAuto is RepairSwim up to MaxSwimNodes nodes and RepairModel
	// above, when nodes crash; RepairNone otherwise (nothing to repair).
	RepairAuto = "auto"
)

// MaxSwimNodes bounds RepairSwim: every SWIM node holds every member
// (measured: about 370 B of heap per member, with the piggyback queue's
// map at the size the join news left it), so N nodes hold N² members —
// 0.34 GB at 1,000 nodes, 1.4 GB at 2,000, about 37 GB at 10,000; and
// setting up the converged views takes 15 s at 1,000 nodes, 53 s at
// 2,000 (quadratic).
const MaxSwimNodes = 2000

// Scenario is everything that determines a run. Two runs of the same
// Scenario produce the same Report (apart from Report.Perf).
type Scenario struct {
	// Protocol is ProtoPlumtree (the default), ProtoFlood or ProtoPush.
	Protocol string `json:"protocol"`

	Nodes    int    `json:"nodes"`
	Topology string `json:"topology"` // TopoMembership, TopoRandom, TopoRing or TopoFull
	Degree   int    `json:"degree"`   // neighbours per node with TopoRandom
	// FanoutExtra is c in the k = ceil(ln N) + c members each node chooses
	// with TopoMembership (the runtime's MembershipConfig.FanoutExtra,
	// default 2).
	FanoutExtra int `json:"fanout_extra"`
	// Repair is how the membership overlay repairs itself after nodes
	// crash (ProtoPlumtree over TopoMembership): RepairSwim, RepairModel
	// or RepairNone; RepairAuto (or "") chooses.
	Repair string `json:"repair"`

	// Core is every node's protocol configuration; zero fields take the
	// core defaults (Fanout 3, AckTimeout 2 s, GraftTimeout 200 ms, …).
	// With ProtoFlood, Fanout is core.FanoutAll.
	Core core.Config `json:"core"`

	// Loss is the probability that one send is lost. Unary push: half of
	// the losses drop the request, half drop the ACK (the receiver has
	// the message, the sender does not know), as memnet does; either way
	// the sender times out after Core.AckTimeout. Plumtree: a lost
	// envelope breaks its stream, both ends at once, as memnet does; the
	// opener re-opens it after a backoff and re-sends what was not
	// acknowledged. SWIM datagrams are lost independently.
	Loss float64 `json:"loss"`
	// Latency is the one-way delay of every request, ACK, envelope and
	// SWIM datagram.
	Latency Latency `json:"latency"`
	// Proc is the time a node takes between accepting a message and
	// starting its forwards (unary push), or between a stream's writer
	// being woken and writing (Plumtree). Default 0.
	Proc time.Duration `json:"proc_ns"`

	// Crash is the fraction of nodes (never a publisher) that crash: from
	// then on they drop whatever reaches them, send nothing more, and
	// sends to them time out (unary) or their streams break (Plumtree).
	Crash float64 `json:"crash"`
	// CrashAt is when they crash; 0 means before the first publish.
	CrashAt time.Duration `json:"crash_at_ns"`

	// Partition is the fraction of nodes (chosen at random) on one side of
	// a partition; 0 means none. While it holds, every request and ACK
	// between the two sides is lost (unary push only).
	Partition float64 `json:"partition"`
	// PartitionAt is when the partition starts (default 0, before the
	// first publish); HealAt when it ends (0: never).
	PartitionAt time.Duration `json:"partition_at_ns"`
	HealAt      time.Duration `json:"heal_at_ns"`

	// Messages is how many messages are published, each from a random
	// node that never crashes.
	Messages int `json:"messages"`
	// Publishers, if set, limits the publishing nodes to that many (drawn
	// at random among those that never crash), so that sources publish
	// again and later messages follow their trees. 0: any of them, so that
	// with many nodes and few messages most messages start a new tree.
	Publishers int `json:"publishers,omitempty"`
	// Rate spreads the publishes: message i is published at Start +
	// i/Rate seconds. 0 publishes them all at Start.
	Rate float64 `json:"rate"`
	// Start is when the first message is published.
	Start time.Duration `json:"start_ns"`
	// Publish, if set, replaces Messages, Rate and Start: each phase
	// publishes Count messages at Rate per second from At (FailScenario's
	// schedule). Validate sets Messages to their total.
	Publish []Phase `json:"publish,omitempty"`
	// Batch groups the messages for Report.Batches, in publish order; the
	// first batch after the crash starts with the first message published
	// at or after CrashAt. 0: no batches.
	Batch int `json:"batch"`
	// Drain is how long a Plumtree run goes on after the last publish:
	// its timers (grafts, flushes, digests) never fall silent, so the run
	// ends then. Default 10 s.
	Drain time.Duration `json:"drain_ns"`

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

// Phase is one part of a publish schedule.
type Phase struct {
	At    time.Duration `json:"at_ns"`
	Count int           `json:"count"`
	Rate  float64       `json:"rate"` // per second; 0: all at At
}

// publishTimes returns when each message is published, in order.
func (s *Scenario) publishTimes() []int64 {
	phases := s.Publish
	if len(phases) == 0 {
		phases = []Phase{{At: s.Start, Count: s.Messages, Rate: s.Rate}}
	}
	var out []int64
	for _, p := range phases {
		for m := range p.Count {
			at := int64(p.At)
			if p.Rate > 0 {
				at += int64(float64(m) / p.Rate * float64(time.Second))
			}
			out = append(out, at)
		}
	}
	return out
}

// DefaultScenario is the command's default: 1,000 nodes running
// Plumtree over the membership overlay the daemon builds (each node
// chooses ceil(ln N)+2 members, links are two-way), no loss, log-normal
// delays with a 10 ms median, 50 messages at 10 per second from 1 s on,
// reported in batches of 10 (a new source's first messages flood; the
// later ones follow its tree).
func DefaultScenario() Scenario {
	return Scenario{
		Protocol:    ProtoPlumtree,
		Nodes:       1000,
		Topology:    TopoMembership,
		Degree:      8,
		FanoutExtra: 2,
		Repair:      RepairAuto,
		Latency:     Latency{Kind: LogNormal, A: 10 * time.Millisecond, Sigma: 0.5},
		Messages:    50,
		Rate:        10,
		Start:       time.Second,
		Batch:       10,
		Seed:        1,
	}
}

// DefaultUnaryScenario is the default of --protocol push and flood (the
// simulator's scenario before streaming): 1,000 nodes on a random
// 8-regular graph, fanout 3 (push) or all (flood), 10 messages published
// at time 0.
func DefaultUnaryScenario(protocol string) Scenario {
	sc := Scenario{
		Protocol:    protocol,
		Nodes:       1000,
		Topology:    TopoRandom,
		Degree:      8,
		FanoutExtra: 2,
		Repair:      RepairNone,
		Core:        core.Config{Fanout: core.DefaultFanout},
		Latency:     Latency{Kind: LogNormal, A: 10 * time.Millisecond, Sigma: 0.5},
		Messages:    10,
		Seed:        1,
	}
	if protocol == ProtoFlood {
		sc.Core.Fanout = core.FanoutAll
	}
	return sc
}

// Failure experiment schedule (FailScenario).
const (
	FailWarmup     = 20               // messages before the crash
	FailWarmupRate = 4                // per second
	FailBatch      = 10               // messages per batch after the crash
	FailBatchRate  = 2                // per second: a batch takes 5 s
	failSettle     = 1 * time.Second  // from the last warm-up message to the crash
	failStart      = 1 * time.Second  // the first warm-up message
	failDrain      = 10 * time.Second // after the last message
)

// FailOffsets are the times after the crash at which FailScenario's
// batches start: right away, then at growing intervals while the overlay
// repairs itself.
var FailOffsets = []time.Duration{0, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
	4 * time.Minute, 8 * time.Minute, 12 * time.Minute, 16 * time.Minute, 24 * time.Minute, 32 * time.Minute}

// FailScenario is the failure experiment of the Plumtree and HyParView
// papers on base: FailWarmup messages from live nodes let the overlay and
// the trees settle, then the fraction frac of the nodes crashes at once;
// batches of FailBatch messages from live nodes follow right away and at
// each of FailOffsets up to the first one at or past horizon (the batch
// "after recovery"). Batch results show reliability over time after the
// failure. The run ends base.Drain (default 10 s) after the last message.
func FailScenario(base Scenario, frac float64, horizon time.Duration) Scenario {
	sc := base
	sc.Crash = frac
	sc.Batch = FailBatch
	if sc.Drain == 0 {
		sc.Drain = failDrain
	}
	sc.Publish = []Phase{{At: failStart, Count: FailWarmup, Rate: FailWarmupRate}}
	sc.CrashAt = failStart + time.Duration(float64(FailWarmup-1)/FailWarmupRate*float64(time.Second)) + failSettle
	for _, off := range FailOffsets {
		sc.Publish = append(sc.Publish, Phase{At: sc.CrashAt + off, Count: FailBatch, Rate: FailBatchRate})
		if off >= horizon {
			break
		}
	}
	sc.Messages, sc.Rate, sc.Start = 0, 0, 0
	return sc
}

// Validate fills defaults and rejects impossible scenarios.
func (s *Scenario) Validate() error {
	if s.Protocol == "" {
		s.Protocol = ProtoPlumtree
	}
	if s.Tick == 0 {
		s.Tick = time.Second
	}
	if s.MaxTime == 0 {
		s.MaxTime = time.Hour
	}
	if s.Topology == "" {
		s.Topology = TopoMembership
		if s.Protocol != ProtoPlumtree {
			s.Topology = TopoRandom
		}
	}
	if s.FanoutExtra == 0 {
		s.FanoutExtra = 2
	}
	if s.Drain == 0 {
		s.Drain = 10 * time.Second
	}
	if s.Protocol == ProtoFlood {
		s.Core.Fanout = core.FanoutAll
	}
	if s.Repair == "" || s.Repair == RepairAuto {
		switch {
		case s.Protocol != ProtoPlumtree || s.Topology != TopoMembership || s.Crash == 0:
			s.Repair = RepairNone
		case s.Nodes <= MaxSwimNodes:
			s.Repair = RepairSwim
		default:
			s.Repair = RepairModel
		}
	}
	var errs []error
	if len(s.Publish) > 0 {
		s.Messages = 0
		for k, p := range s.Publish {
			if p.Count < 1 || p.Rate < 0 || p.Rate != p.Rate || p.At < 0 || k > 0 && p.At < s.Publish[k-1].At {
				errs = append(errs, fmt.Errorf("publish phase %d %+v: want count ≥ 1, rate ≥ 0, times ≥ 0 and in order", k, p))
			}
			s.Messages += p.Count
		}
	}
	if err := s.Core.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("core config: %w", err))
	}
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	switch s.Protocol {
	case ProtoPlumtree, ProtoPush, ProtoFlood:
	default:
		check(true, "protocol %q: want plumtree, flood or push", s.Protocol)
	}
	check(s.Core.MaxAttempts > 255, "core MaxAttempts %d: the simulator allows at most 255", s.Core.MaxAttempts)
	check(s.Nodes < 1, "nodes %d: need at least 1", s.Nodes)
	check(s.Messages < 1, "messages %d: need at least 1", s.Messages)
	// Publishers are drawn among the nodes that never crash (newEngine).
	if stay := s.Nodes - int(s.Crash*float64(s.Nodes)); s.Crash >= 0 && s.Crash < 1 {
		check(s.Publishers < 0 || s.Publishers > stay, "publishers %d: want 0 (any node) up to %d, the nodes that never crash", s.Publishers, stay)
	}
	check(s.Loss < 0 || s.Loss > 1 || s.Loss != s.Loss, "loss %v: want a probability in [0, 1]", s.Loss)
	check(s.Protocol == ProtoPlumtree && s.Loss >= 0.9, "loss %v: a Plumtree stream breaks on every lost envelope; above 0.9 nothing gets through", s.Loss)
	check(s.Crash < 0 || s.Crash >= 1 || s.Crash != s.Crash, "crash %v: want a fraction in [0, 1)", s.Crash)
	check(s.Partition < 0 || s.Partition >= 1 || s.Partition != s.Partition, "partition %v: want a fraction in [0, 1)", s.Partition)
	check(s.Protocol == ProtoPlumtree && s.Partition > 0, "partition: only the unary models (--protocol push or flood) simulate partitions")
	check(s.Rate < 0 || s.Rate != s.Rate, "rate %v: must be ≥ 0", s.Rate)
	check(s.Batch < 0, "batch %d: must be ≥ 0", s.Batch)
	check(s.FanoutExtra < 0, "fanout extra %d: must be ≥ 0", s.FanoutExtra)
	check(s.Proc < 0 || s.CrashAt < 0 || s.PartitionAt < 0 || s.HealAt < 0 || s.MaxTime < 0 || s.Start < 0 || s.Drain < 0, "times must be ≥ 0")
	check(s.HealAt > 0 && s.HealAt <= s.PartitionAt, "heal at %v must come after the partition at %v", s.HealAt, s.PartitionAt)
	check(s.Latency.Kind == Uniform && s.Latency.A > s.Latency.B, "latency %v: minimum above maximum", s.Latency)
	switch s.Repair {
	case RepairNone:
	case RepairSwim, RepairModel:
		check(s.Protocol != ProtoPlumtree || s.Topology != TopoMembership, "repair %s: only Plumtree over the membership topology repairs its overlay", s.Repair)
		check(s.Repair == RepairSwim && s.Nodes > MaxSwimNodes, "repair swim: %d nodes is too many (at most %d: every node holds every member); use --repair model", s.Nodes, MaxSwimNodes)
	default:
		check(true, "repair %q: want swim, model, none or auto", s.Repair)
	}
	switch s.Topology {
	case TopoMembership:
	case TopoRandom:
		check(s.Nodes > 1 && (s.Degree < 1 || s.Degree >= s.Nodes), "degree %d: want 1 to nodes−1 = %d", s.Degree, s.Nodes-1)
		check(s.Nodes*s.Degree%2 != 0, "nodes × degree = %d × %d must be even for a regular graph", s.Nodes, s.Degree)
	case TopoRing:
	case TopoFull:
		check(s.Nodes > MaxFullNodes, "full topology: %d nodes is too many (at most %d)", s.Nodes, MaxFullNodes)
	default:
		check(true, "topology %q: want membership, random, ring or full", s.Topology)
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
