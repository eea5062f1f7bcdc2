package core

import (
	"fmt"
	"time"
)

// Defaults for Config. Their reasons are in docs/DESIGN.md.
const (
	DefaultFanout          = 3
	DefaultMaxPayloadBytes = 1 << 20 // 1 MiB
	DefaultMaxHashBytes    = 256
	DefaultMinTTL          = 2 * time.Second
	DefaultMaxTTL          = 64 * time.Second
	DefaultLongTTL         = 10 * time.Minute
	DefaultMaxSeen         = 1 << 18 // ids remembered in the long-TTL cache
	DefaultMaxActive       = 1 << 16 // messages in hot (adaptive-TTL) state
	DefaultAckTimeout      = 2 * time.Second
	DefaultMaxAttempts     = 4 // the first send and three retries
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultMaxRetryBackoff = 2 * time.Second
	DefaultInitialRTT      = 50 * time.Millisecond
	DefaultHopWindow       = time.Minute
	DefaultGraftTimeout    = 200 * time.Millisecond
	DefaultSyncInterval    = time.Second
	DefaultStoreBytes      = 64 << 20
	DefaultMaxGraft        = 1024
	DefaultMaxSyncMessages = 4096
	DefaultMaxDigestAbove  = 256
	DefaultMaxHoles        = 4096
	DefaultPeerGrace       = 10 * time.Second

	// FanoutAll as Config.Fanout forwards to every neighbour but the
	// sender and the origin.
	FanoutAll = -1
)

// Config holds the protocol parameters of one node. The zero value of every
// field means "use the default"; call Validate to fill them in and reject
// impossible combinations.
type Config struct {
	// Fanout is how many neighbours a node forwards a fresh message to.
	// Default 3, as in the seed. Candidates exclude the sender, the origin
	// and the node itself; with fewer candidates the node sends to all.
	// FanoutAll (-1) forwards to every candidate: a flood over the
	// neighbour graph.
	Fanout int

	// MaxPayloadBytes bounds GossipMessage.payload. Default 1 MiB.
	MaxPayloadBytes int
	// MaxHashBytes bounds hash, from_hash and origin. Default 256.
	MaxHashBytes int

	// MinTTL and MaxTTL clamp the adaptive TTL of hot message state.
	// Defaults 2 s and 64 s, the seed's range.
	MinTTL, MaxTTL time.Duration
	// LongTTL is how long a message id is remembered for de-duplication
	// after its hot state expires. Default 10 min, as in the seed.
	LongTTL time.Duration
	// MaxSeen bounds the long-TTL cache (entries). When sustained traffic
	// exceeds MaxSeen ids per LongTTL, the least valuable ids are evicted
	// early and a very late duplicate of one of them would be delivered
	// again; Stats.SeenEvicted counts this. Default 262,144 (~40 MiB worst
	// case with 100-byte ids).
	MaxSeen int
	// MaxActive bounds the number of messages in hot state. Past it the
	// oldest hot entry is retired early to the long-TTL cache (it stays
	// de-duplicated; only its ACK bookkeeping ends). Default 65,536.
	MaxActive int

	// AckTimeout is the deadline of one send attempt. Default 2 s.
	AckTimeout time.Duration
	// MaxAttempts bounds the send attempts per (message, neighbour),
	// the first included. Default 4. 1 disables retries.
	MaxAttempts int
	// RetryBackoff is the delay before the first retry; it doubles per
	// retry up to MaxRetryBackoff, with ±20% jitter. Defaults 100 ms, 2 s.
	RetryBackoff, MaxRetryBackoff time.Duration

	// InitialRTT is the per-hop latency assumed for a neighbour before any
	// ACK from it has been timed. Default 50 ms.
	InitialRTT time.Duration
	// HopWindow is the decay period of the diameter estimate: the largest
	// hop count seen is forgotten after one to two windows. Default 1 min.
	HopWindow time.Duration

	// Streaming dissemination (Plumtree and anti-entropy; DESIGN.md §6a).

	// GraftTimeout is how long a node waits for a message announced to it
	// (IHAVE) before requesting it (GRAFT), and how long it waits for the
	// answer before asking the next announcer. Anti-entropy also leaves
	// alone messages younger than this, which are probably in flight.
	// Default 200 ms: far above a loopback or LAN round trip under load,
	// so that slow eager copies do not trigger redundant grafts.
	GraftTimeout time.Duration
	// SyncInterval is the period of anti-entropy: a digest to one random
	// stream neighbour. Default 1 s.
	SyncInterval time.Duration
	// StoreBytes bounds the messages kept (serialized) to answer grafts
	// and digests; they are kept at most LongTTL. Repair after a
	// partition covers what still fits. Default 64 MiB.
	StoreBytes int
	// MaxGraft bounds the numbers one graft asks for, and the messages
	// one graft is answered with. Default 1024.
	MaxGraft int
	// MaxSyncMessages bounds the messages sent in answer to one digest;
	// the rest follow in later rounds. Default 4096.
	MaxSyncMessages int
	// MaxDigestAbove bounds the numbers above the contiguous prefix that
	// a digest lists per sequence. Default 256.
	MaxDigestAbove int
	// MaxHoles bounds the gaps a node tracks in one sequence (its state
	// is one entry per gap, whatever the numbers); past it the oldest gap
	// is given up (Counters.HolesSkipped, and a Skip for the log). Legit
	// traffic leaves a few gaps; the bound is against a peer that invents
	// numbers. Default 4096.
	MaxHoles int
	// PeerGrace is how long the message store keeps waiting for a stream
	// neighbour whose stream is not up (not yet, or no more) before it may
	// evict messages that neighbour is not known to hold. Default 10 s.
	PeerGrace time.Duration
}

// Validate fills zero fields with their defaults and rejects impossible
// values. It returns the first problem found.
func (c *Config) Validate() error {
	setInt(&c.Fanout, DefaultFanout)
	setInt(&c.MaxPayloadBytes, DefaultMaxPayloadBytes)
	setInt(&c.MaxHashBytes, DefaultMaxHashBytes)
	setDur(&c.MinTTL, DefaultMinTTL)
	setDur(&c.MaxTTL, DefaultMaxTTL)
	setDur(&c.LongTTL, DefaultLongTTL)
	setInt(&c.MaxSeen, DefaultMaxSeen)
	setInt(&c.MaxActive, DefaultMaxActive)
	setDur(&c.AckTimeout, DefaultAckTimeout)
	setInt(&c.MaxAttempts, DefaultMaxAttempts)
	setDur(&c.RetryBackoff, DefaultRetryBackoff)
	setDur(&c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	setDur(&c.InitialRTT, DefaultInitialRTT)
	setDur(&c.HopWindow, DefaultHopWindow)
	setDur(&c.GraftTimeout, DefaultGraftTimeout)
	setDur(&c.SyncInterval, DefaultSyncInterval)
	setInt(&c.StoreBytes, DefaultStoreBytes)
	setInt(&c.MaxGraft, DefaultMaxGraft)
	setInt(&c.MaxSyncMessages, DefaultMaxSyncMessages)
	setInt(&c.MaxDigestAbove, DefaultMaxDigestAbove)
	setInt(&c.MaxHoles, DefaultMaxHoles)
	setDur(&c.PeerGrace, DefaultPeerGrace)

	switch {
	case c.Fanout < 0 && c.Fanout != FanoutAll:
		return fmt.Errorf("fanout must be positive or FanoutAll (-1), got %d", c.Fanout)
	case c.MaxPayloadBytes < 0 || c.MaxHashBytes < 0 || c.MaxSeen < 0 || c.MaxActive < 0 || c.MaxAttempts < 0 ||
		c.StoreBytes < 0 || c.MaxGraft < 0 || c.MaxSyncMessages < 0 || c.MaxDigestAbove < 0 || c.MaxHoles < 0:
		return fmt.Errorf("size limits and MaxAttempts must be positive")
	case c.MinTTL < 0 || c.MaxTTL < 0 || c.LongTTL < 0 || c.AckTimeout < 0 ||
		c.RetryBackoff < 0 || c.MaxRetryBackoff < 0 || c.InitialRTT < 0 || c.HopWindow < 0 ||
		c.GraftTimeout < 0 || c.SyncInterval < 0 || c.PeerGrace < 0:
		return fmt.Errorf("durations must be positive")
	case c.MinTTL > c.MaxTTL:
		return fmt.Errorf("MinTTL (%v) must not exceed MaxTTL (%v)", c.MinTTL, c.MaxTTL)
	case c.LongTTL < c.MaxTTL:
		return fmt.Errorf("LongTTL (%v) must be at least MaxTTL (%v): de-duplication must outlive hot state", c.LongTTL, c.MaxTTL)
	case c.RetryBackoff > c.MaxRetryBackoff:
		return fmt.Errorf("RetryBackoff (%v) must not exceed MaxRetryBackoff (%v)", c.RetryBackoff, c.MaxRetryBackoff)
	}
	return nil
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
