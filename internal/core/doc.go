// Package core is the gossip protocol as a pure state machine.
//
// Nothing in this package starts a goroutine, performs I/O or reads the
// clock: every method that depends on time takes `now` as an argument, and
// every decision that needs randomness draws from the node's own seeded
// source. The runtime around it (package gossip) owns the goroutines, the
// timers and the transport; the simulator drives the same code with virtual
// time. A Node is not safe for concurrent use: its owner serialises calls.
//
// The flow for one message on one node:
//
//	Receive(now, msg)   validate → de-duplicate → record → choose targets
//	                    → Result{Ack, Fresh, Forward, Targets}
//	SendResult(...)     per target and attempt: record the ACK or the failure,
//	                    and say whether (and after how long) to retry
//	Tick(now)           periodic decay: expire hot state, decay estimates
//
// See docs/DESIGN.md for the state machine of a message and the TTL rules.
package core
