// Package swim is the membership protocol of a gossip node as a pure state
// machine: SWIM failure detection (Das, Gupta, Motivala 2002) with the
// Lifeguard refinements (Dadgar, Phillips, Currey 2018), in the shape of
// hashicorp/memberlist but with no goroutines, no I/O and no clock of its
// own.
//
// # Usage
//
// A Node is driven by its caller, the runtime, in the style of
// etcd-io/raft:
//
//   - Tick(now) runs the timers that are due (probes, indirect probes,
//     suspicion timeouts, gossip, push-pull, reaping). Next reports when the
//     next one is due, so the runtime can sleep until then.
//   - Step(now, m) hands the node one message that arrived from another
//     member. For a request (Ping, Sync) it returns the reply the runtime
//     must send back to the sender (over gRPC: the RPC's response).
//   - Ready drains what the node wants done: messages to send and events
//     (join, update, suspect, dead, leave, alive again) for the application.
//   - Join, Leave and Members are the local operations.
//
// Time is whatever the caller passes as now; the node never reads a clock,
// and its random choices come from the generator seeded by Config.Seed, so
// a simulation with virtual time is deterministic.
//
// # Indirect probes
//
// A PingReq asks an intermediate member to probe a target. The core of the
// intermediate only turns the PingReq into a Ping (HandlePingReq via Step
// returns it); carrying that Ping and relaying the outcome back to the
// requester as an Ack (success) or a Nack (no answer within the PingReq's
// Timeout) is the runtime's job, because that is where the transport's
// request/response structure lives.
//
// # Merge rules
//
// Every piece of membership news is an Update: (member id, address, state,
// incarnation, from). For a member other than this node, an update is
// applied when it is newer: a higher incarnation always wins; at equal
// incarnations suspect beats alive and dead/left beat both. An alive update
// at a higher incarnation may carry a new address: that is how a node that
// restarts at a new address replaces its old entry. News about this node
// itself that is not "alive at my address" (or that is about a higher
// incarnation than its own) is refuted: the node raises its incarnation
// above the one in the news and disseminates "alive". A restarted node
// whose incarnation began at 0 thus learns its old incarnation from the
// first full state it receives (the seed's Join reply) and refutes above
// it, instead of being locked out.
//
// See docs/DESIGN.md §10 for the state machine, the timeouts and their
// formulas, and measured figures.
package swim
