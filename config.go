package gossip

import (
	"fmt"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
)

// Config is the configuration of one GossipNode. Zero fields take their
// defaults in Validate; DefaultConfig returns them filled in.
type Config struct {
	// Fanout is how many neighbours a fresh message is forwarded to,
	// excluding the sender and the origin. Default 3 (the seed's).
	// FanoutAll floods: every neighbour but the sender and the origin.
	Fanout int

	// MaxPayloadBytes bounds GossipMessage.payload; larger messages are
	// rejected with ResourceExhausted. Default 1 MiB.
	MaxPayloadBytes int
	// MaxHashBytes bounds hash, from_hash, origin and neighbour ids;
	// longer ones are rejected with InvalidArgument. Default 256.
	MaxHashBytes int

	// MinTTL and MaxTTL clamp the adaptive TTL of a message's hot state
	// (ACK bookkeeping). Defaults 2 s and 64 s.
	MinTTL, MaxTTL time.Duration
	// LongTTL is how long a message id stays de-duplicated. Default 10 min.
	LongTTL time.Duration
	// MaxSeen bounds the ids in the long-TTL cache. Default 262,144.
	MaxSeen int
	// MaxActive bounds the messages in hot state. Default 65,536.
	MaxActive int

	// AckTimeout is the deadline of each forward attempt (one RPC).
	// Default 2 s.
	AckTimeout time.Duration
	// MaxAttempts bounds the attempts per (message, neighbour), the first
	// included; 1 disables retries. Default 4.
	MaxAttempts int
	// RetryBackoff is the delay before the first retry; it doubles up to
	// MaxRetryBackoff, with ±20% jitter. Defaults 100 ms and 2 s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// InitialRTT is the hop latency assumed for a neighbour before its
	// first ACK (TTL estimate). Default 50 ms.
	InitialRTT time.Duration
	// HopWindow is the decay period of the diameter estimate. Default 1 min.
	HopWindow time.Duration

	// Streaming dissemination (docs/DESIGN.md §6a). Between nodes that
	// both speak Gossip.Stream, messages travel on one long-lived stream
	// per neighbour, in batches, along per-source Plumtree trees with
	// IHAVE/GRAFT repair and periodic anti-entropy; Fanout and the retry
	// settings then apply only to neighbours that answer the stream with
	// Unimplemented (the seed's unary RPC).

	// DisableStreaming makes the node send to every neighbour with the
	// seed's unary PutMessageToClient (push to Fanout neighbours with
	// retries), as before streaming existed. It still serves streams.
	DisableStreaming bool
	// GraftTimeout is how long a node waits for a message announced to it
	// before requesting it, and for the answer before asking another
	// announcer. Default 200 ms.
	GraftTimeout time.Duration
	// SyncInterval is the period of anti-entropy with one random stream
	// neighbour. Default 1 s.
	SyncInterval time.Duration
	// StoreBytes bounds the messages kept to answer grafts and
	// anti-entropy (each kept at most LongTTL) — but a message a stream
	// neighbour is not known to hold is not evicted by it: past it the node
	// is congested (publishers wait, everywhere) until the neighbours have
	// what they lack; past twice it, the oldest go anyway (counted in
	// Stats.Stream.StoreEvictedUnsafe). Default 64 MiB.
	StoreBytes int
	// PeerGrace is how long the store waits for a stream neighbour whose
	// stream is not up (not yet, or no more) before it stops keeping
	// messages for it. Default 10 s.
	PeerGrace time.Duration
	// StreamQueueBytes bounds the bytes queued for one neighbour's stream.
	// Past it, messages for that neighbour are announced (IHAVE) instead
	// of pushed, so a slow neighbour pulls them at its own pace
	// (Stats.Deferred); past four times it, frames are dropped and left to
	// anti-entropy (Stats.FramesDropped). Default 8 MiB.
	StreamQueueBytes int
	// MaxQueuedBytes bounds the bytes queued for all streams together.
	// Past it the node is saturated: Publish waits for room until its
	// context ends, then fails with ResourceExhausted
	// (Stats.PublishRejected). Default 64 MiB.
	MaxQueuedBytes int

	// RefuseUntilReady makes the node refuse new messages — Publish, and
	// PutMessageToClient of a message with no origin (one entering the
	// network here) — with ErrNotReady (Unavailable) until it is ready:
	// it has joined a cluster (Join) or was marked ready (MarkReady).
	// Without it, a node that has not joined acknowledges what it cannot
	// pass on yet. Copies relayed by other nodes are always taken. The
	// daemon sets it. Default false (the library's nodes with static
	// neighbours publish at once).
	RefuseUntilReady bool

	// DecayInterval is how often the node runs periodic decay (expiry of
	// hot state and of the long-TTL cache). Default 1 s.
	DecayInterval time.Duration
	// DeliveryBuffer is the number of delivered messages queued for the
	// DeliveryHandler. When it is full, receiving blocks (up to the
	// sender's deadline): the application slows gossip down rather than
	// losing messages. Default 1024.
	DeliveryBuffer int
	// MaxInflightSends bounds concurrent forwards (each is one goroutine
	// doing one RPC at a time, with its retries). When it is reached, a
	// fresh message waits for a slot up to its caller's deadline; forwards
	// that cannot get one are counted in Stats.SendsDropped. Default 4096.
	MaxInflightSends int
	// ShutdownTimeout bounds how long Close waits for in-flight RPCs to
	// the gRPC server before cutting them. Default 5 s.
	ShutdownTimeout time.Duration
	// LogRetention bounds how long the delivery log keeps a message
	// (counted from when it was logged): subscriptions can start that far
	// back (SubscribeFrom). Default LongTTL.
	LogRetention time.Duration
	// LogRetentionBytes bounds the delivery log's size (payload, ids and
	// a fixed 64 bytes per message); past it the oldest messages go first.
	// Default 64 MiB.
	LogRetentionBytes int

	// Seed seeds the node's random choices (targets, jitter). 0 picks a
	// random seed.
	Seed uint64
	// TraceSample is the fraction (0 to 1) of the messages published on
	// this node that are traced as if published with Traced(): every node
	// that delivers one reports a receipt to this node (Trace, Traces).
	// Default 0: only messages published with Traced().
	TraceSample float64
}

// FanoutAll as Config.Fanout forwards every fresh message to all
// neighbours except the sender and the origin (a flood over the neighbour
// graph: complete whenever the graph is connected).
const FanoutAll = core.FanoutAll

// Defaults of the runtime fields of Config.
const (
	DefaultDecayInterval     = time.Second
	DefaultDeliveryBuffer    = 1024
	DefaultMaxInflightSends  = 4096
	DefaultShutdownTimeout   = 5 * time.Second
	DefaultStreamQueueBytes  = 8 << 20
	DefaultMaxQueuedBytes    = 64 << 20
	DefaultLogRetentionBytes = 64 << 20
)

// DefaultConfig returns a Config with every field at its default.
func DefaultConfig() Config {
	var c Config
	if err := c.Validate(); err != nil {
		panic("gossip: default config invalid: " + err.Error())
	}
	return c
}

// Validate fills zero fields with defaults and rejects impossible values.
func (c *Config) Validate() error {
	cc := c.core()
	if err := cc.Validate(); err != nil {
		return fmt.Errorf("gossip: invalid config: %w", err)
	}
	c.fromCore(cc)
	setDur(&c.DecayInterval, DefaultDecayInterval)
	setInt(&c.DeliveryBuffer, DefaultDeliveryBuffer)
	setInt(&c.MaxInflightSends, DefaultMaxInflightSends)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setInt(&c.StreamQueueBytes, DefaultStreamQueueBytes)
	setInt(&c.MaxQueuedBytes, DefaultMaxQueuedBytes)
	setDur(&c.LogRetention, c.LongTTL)
	setInt(&c.LogRetentionBytes, DefaultLogRetentionBytes)
	if c.LogRetention < 0 || c.LogRetentionBytes < 0 {
		return fmt.Errorf("gossip: invalid config: LogRetention and LogRetentionBytes must be positive")
	}
	if !(c.TraceSample >= 0 && c.TraceSample <= 1) {
		return fmt.Errorf("gossip: invalid config: TraceSample %v is not between 0 and 1", c.TraceSample)
	}
	if c.DecayInterval < 0 || c.ShutdownTimeout < 0 || c.DeliveryBuffer < 0 || c.MaxInflightSends < 0 ||
		c.StreamQueueBytes < 0 || c.MaxQueuedBytes < 0 {
		return fmt.Errorf("gossip: invalid config: DecayInterval, ShutdownTimeout, DeliveryBuffer, MaxInflightSends, StreamQueueBytes and MaxQueuedBytes must be positive")
	}
	return nil
}

func (c *Config) core() core.Config {
	return core.Config{
		Fanout: c.Fanout, MaxPayloadBytes: c.MaxPayloadBytes, MaxHashBytes: c.MaxHashBytes,
		MinTTL: c.MinTTL, MaxTTL: c.MaxTTL, LongTTL: c.LongTTL, MaxSeen: c.MaxSeen, MaxActive: c.MaxActive,
		AckTimeout: c.AckTimeout, MaxAttempts: c.MaxAttempts,
		RetryBackoff: c.RetryBackoff, MaxRetryBackoff: c.MaxRetryBackoff,
		InitialRTT: c.InitialRTT, HopWindow: c.HopWindow,
		GraftTimeout: c.GraftTimeout, SyncInterval: c.SyncInterval, StoreBytes: c.StoreBytes, PeerGrace: c.PeerGrace,
	}
}

func (c *Config) fromCore(cc core.Config) {
	c.Fanout, c.MaxPayloadBytes, c.MaxHashBytes = cc.Fanout, cc.MaxPayloadBytes, cc.MaxHashBytes
	c.MinTTL, c.MaxTTL, c.LongTTL, c.MaxSeen, c.MaxActive = cc.MinTTL, cc.MaxTTL, cc.LongTTL, cc.MaxSeen, cc.MaxActive
	c.AckTimeout, c.MaxAttempts = cc.AckTimeout, cc.MaxAttempts
	c.RetryBackoff, c.MaxRetryBackoff = cc.RetryBackoff, cc.MaxRetryBackoff
	c.InitialRTT, c.HopWindow = cc.InitialRTT, cc.HopWindow
	c.GraftTimeout, c.SyncInterval, c.StoreBytes, c.PeerGrace = cc.GraftTimeout, cc.SyncInterval, cc.StoreBytes, cc.PeerGrace
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDur(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}
