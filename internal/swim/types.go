package swim

import "time"

// State is a member's state. The values match the wire's MemberState.
type State uint8

// Member states.
const (
	Alive   State = 1 // answering probes (or not yet found otherwise)
	Suspect State = 2 // missed a probe; dead when the suspicion times out unless refuted
	Dead    State = 3 // declared failed; no longer probed, reaped after DeadReapAfter
	Left    State = 4 // announced a graceful leave; reaped after DeadReapAfter
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return "unknown"
}

// rank orders states at equal incarnation: the higher wins.
func (s State) rank() int {
	switch s {
	case Alive:
		return 0
	case Suspect:
		return 1
	}
	return 2 // Dead and Left
}

// gone reports a state that is not probed nor gossiped to.
func (s State) gone() bool { return s == Dead || s == Left }

// Member is one member as this node sees it.
type Member struct {
	ID          string
	Addr        string
	State       State
	Incarnation uint64
	// LastHeard is when this node last had a direct answer from, or a
	// direct request by, the member; zero when never.
	LastHeard time.Time
	// Since is when the member entered its current state here.
	Since time.Time
	Self  bool
	// MaxPayload is what the member says it accepts (the runtime's limit
	// on message payloads, in bytes), carried for the runtime; 0: unknown.
	// It is part of a member's incarnation, like its address.
	MaxPayload uint64
}

// Update is one piece of membership news, as piggybacked or synced.
type Update struct {
	ID          string
	Addr        string
	State       State
	Incarnation uint64
	// From is the member that declared the state (for a suspicion: the
	// suspecter, counted by Lifeguard's confirmations); may be empty.
	From string
	// MaxPayload is the member's (see Member.MaxPayload); 0: unknown.
	MaxPayload uint64
}

// Kind is a message's kind.
type Kind uint8

// Message kinds. Ping and Sync are requests answered by Step's reply (Ack
// and SyncReply); PingReq is answered, by the runtime that relays it, with
// an Ack or a Nack; Gossip is one-way.
const (
	KindPing Kind = iota + 1
	KindAck
	KindPingReq
	KindNack
	KindGossip
	KindSync
	KindSyncReply
)

func (k Kind) String() string {
	return [...]string{"?", "ping", "ack", "ping-req", "nack", "gossip", "sync", "sync-reply"}[min(int(k), 7)]
}

// Message is what members exchange. Fields a kind does not use are zero.
type Message struct {
	Kind Kind
	// From and FromAddr identify the sender.
	From, FromAddr string
	// To and ToAddr are the destination; To may be empty when only the
	// address is known (a seed).
	To, ToAddr string
	// Seq matches an Ack or Nack to its Ping or PingReq.
	Seq uint64
	// Target is, on a Ping, the id the sender means to reach (a member
	// answering at a reused address with another id does not ack); on a
	// PingReq, the member to probe, at TargetAddr.
	Target, TargetAddr string
	// Timeout is how long the intermediate of a PingReq waits for the
	// target's ack before it answers with a Nack.
	Timeout time.Duration
	// Join marks a Sync sent by a node joining the cluster.
	Join bool
	// Updates are the piggybacked news (Ping, Ack, PingReq, Nack, Gossip)
	// or the full state (Sync, SyncReply).
	Updates []Update
}

// EventKind is the kind of a membership change.
type EventKind uint8

// Membership changes, as seen by this node.
const (
	EventJoin       EventKind = iota + 1 // a member is known for the first time (alive)
	EventUpdate                          // an alive member changed address or incarnation
	EventSuspect                         // a member is suspected
	EventAliveAgain                      // a suspect, dead or left member is alive again
	EventDead                            // a member was declared dead
	EventLeave                           // a member left gracefully
	EventReap                            // a dead or left member was forgotten
)

func (k EventKind) String() string {
	return [...]string{"?", "join", "update", "suspect", "alive-again", "dead", "leave", "reap"}[min(int(k), 7)]
}

// Event is one membership change.
type Event struct {
	Kind   EventKind
	Member Member
	At     time.Time
}
