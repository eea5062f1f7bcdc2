// Package memberlist adapts github.com/hashicorp/memberlist to the benchmark
// harness.
//
// Dissemination uses memberlist's user-broadcast mechanism, the way it is
// meant to carry application data: each payload is queued in a per-node
// TransmitLimitedQueue handed to memberlist through Delegate.GetBroadcasts,
// so memberlist piggybacks it on its gossip (and probe) UDP packets, sending
// it RetransmitMult*ceil(log10(N+1)) times in total, one peer per
// transmission. Every node that receives a message for the first time
// re-queues it in its own queue (epidemic flooding); repeats are delivered
// to the harness (which de-duplicates and counts them) but not re-queued.
//
// Every transmission is a UDP packet of at most Config.UDPBufferSize bytes,
// so a payload that does not fit in one gossip packet cannot be broadcast:
// Publish returns an error for it instead of switching to
// Memberlist.SendReliable (TCP, point to point), which would be a different
// protocol.
//
// Wire traffic is counted by a Transport that wraps memberlist's own
// NetTransport: msgs = UDP packets sent (all of them: gossip, probes, acks,
// compound packets), bytes = UDP payload bytes plus TCP stream bytes in both
// directions (join, push-pull, TCP fallback probes).
package memberlist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ml "github.com/hashicorp/memberlist"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

const (
	// Packet framing memberlist reserves in a gossip packet (v0.7.0,
	// net.go): compoundHeaderOverhead (2) per packet, and for each user
	// broadcast compoundOverhead (2) + userMsgOverhead (1). A user message
	// of len L fits in a packet iff L <= UDPBufferSize - 5 (no label, no
	// encryption).
	packetOverhead = 2 + 2 + 1
	// After packing, memberlist prepends a 5-byte CRC header (protocol
	// >= 5) outside the UDPBufferSize budget.
	crcOverhead = 5
	// maxUDPPayload is the largest IPv4 UDP datagram payload.
	maxUDPPayload = 65507
	// maxUDPBufferSize is the largest UDPBufferSize whose packets (plus
	// the CRC header) are still one IPv4 datagram.
	maxUDPBufferSize = maxUDPPayload - crcOverhead

	// seenGeneration bounds the per-node de-duplication set: two
	// generations of this many ids are kept, so at least the last
	// seenGeneration ids a node saw are remembered.
	seenGeneration = 1 << 18
)

// Impl is the memberlist adapter. Besides harness.Impl it offers
// HandoffDrops and Queued as diagnostics.
type Impl struct {
	mu       sync.Mutex
	nodes    []*node
	describe []string
	maxMsg   int // largest payload Publish accepts
	closed   bool

	udpPackets   atomic.Uint64
	udpBytes     atomic.Uint64
	tcpBytes     atomic.Uint64
	handoffDrops atomic.Uint64
}

// New returns an unstarted memberlist adapter.
func New() harness.Impl { return &Impl{} }

var _ harness.Impl = (*Impl)(nil)

// Name implements harness.Impl.
func (*Impl) Name() string { return "memberlist" }

// node is one memberlist instance and its delegate.
type node struct {
	idx     int
	deliver harness.Deliver
	list    atomic.Pointer[ml.Memberlist]
	queue   *ml.TransmitLimitedQueue

	seenMu   sync.Mutex
	seenCur  map[uint64]struct{}
	seenPrev map[uint64]struct{}
}

// firstSeen records id and reports whether it was new to this node.
func (n *node) firstSeen(id uint64) bool {
	n.seenMu.Lock()
	defer n.seenMu.Unlock()
	if _, ok := n.seenCur[id]; ok {
		return false
	}
	if _, ok := n.seenPrev[id]; ok {
		return false
	}
	if len(n.seenCur) >= seenGeneration {
		n.seenPrev = n.seenCur
		n.seenCur = make(map[uint64]struct{}, seenGeneration)
	}
	n.seenCur[id] = struct{}{}
	return true
}

// NodeMeta implements ml.Delegate.
func (*node) NodeMeta(int) []byte { return nil }

// NotifyMsg implements ml.Delegate: memberlist calls it (from the node's
// packet handler goroutine) for every user message received.
func (n *node) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	// b is only valid during the call.
	msg := bytes.Clone(b)
	n.deliver(n.idx, msg)
	if len(b) < 8 {
		return // no id: cannot de-duplicate, so do not re-flood
	}
	if n.firstSeen(binary.BigEndian.Uint64(b)) {
		// The harness keeps msg; the queue gets its own copy.
		n.queue.QueueBroadcast(&broadcast{msg: bytes.Clone(b)})
	}
}

// GetBroadcasts implements ml.Delegate.
func (n *node) GetBroadcasts(overhead, limit int) [][]byte {
	return n.queue.GetBroadcasts(overhead, limit)
}

// LocalState implements ml.Delegate.
func (*node) LocalState(bool) []byte { return nil }

// MergeRemoteState implements ml.Delegate.
func (*node) MergeRemoteState([]byte, bool) {}

// numMembers feeds the queue's retransmit limit.
func (n *node) numMembers() int {
	if l := n.list.Load(); l != nil {
		return l.NumMembers()
	}
	return 1
}

// broadcast is one user message in a TransmitLimitedQueue. It is a
// UniqueBroadcast: every message is distinct, so the queue never scans for
// messages it would invalidate.
type broadcast struct{ msg []byte }

func (*broadcast) Invalidates(ml.Broadcast) bool { return false }
func (b *broadcast) Message() []byte             { return b.msg }
func (*broadcast) Finished()                     {}
func (*broadcast) UniqueBroadcast()              {}

var _ ml.UniqueBroadcast = (*broadcast)(nil)

// Start implements harness.Impl.
func (m *Impl) Start(ctx context.Context, cfg harness.ClusterConfig, deliver harness.Deliver) (err error) {
	if cfg.Nodes < 1 {
		return fmt.Errorf("memberlist: need at least one node, got %d", cfg.Nodes)
	}
	if deliver == nil {
		return errors.New("memberlist: nil deliver")
	}
	base, preset, err := profileConfig(cfg)
	if err != nil {
		return err
	}

	m.mu.Lock()
	if m.nodes != nil || m.closed {
		m.mu.Unlock()
		return errors.New("memberlist: Start called twice or after Close")
	}
	m.mu.Unlock()

	logger := log.New(&logCounter{drops: &m.handoffDrops}, "", 0)
	nodes := make([]*node, 0, cfg.Nodes)
	defer func() {
		if err != nil {
			for _, n := range nodes {
				if l := n.list.Load(); l != nil {
					_ = l.Shutdown()
				}
			}
		}
	}()

	for i := range cfg.Nodes {
		conf := *base // shallow copy; no shared mutable fields set
		conf.Name = "node-" + strconv.Itoa(i)
		conf.LogOutput = nil
		conf.Logger = logger

		nt, err := ml.NewNetTransport(&ml.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"},
			BindPort:  0,
			Logger:    logger,
		})
		if err != nil {
			return fmt.Errorf("memberlist: node %d transport: %w", i, err)
		}
		conf.Transport = &countingTransport{NetTransport: nt, impl: m}
		conf.BindAddr = "127.0.0.1"
		conf.BindPort = nt.GetAutoBindPort()
		conf.AdvertisePort = conf.BindPort

		n := &node{
			idx:      i,
			deliver:  deliver,
			seenCur:  make(map[uint64]struct{}),
			seenPrev: map[uint64]struct{}{},
		}
		n.queue = &ml.TransmitLimitedQueue{NumNodes: n.numMembers, RetransmitMult: conf.RetransmitMult}
		conf.Delegate = n

		list, err := ml.Create(&conf)
		if err != nil {
			_ = nt.Shutdown()
			return fmt.Errorf("memberlist: node %d: %w", i, err)
		}
		n.list.Store(list)
		nodes = append(nodes, n)
	}

	seed := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(nodes[0].list.Load().LocalNode().Port)))
	for i := 1; i < len(nodes); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := nodes[i].list.Load().Join([]string{seed}); err != nil {
			return fmt.Errorf("memberlist: node %d join %s: %w", i, seed, err)
		}
	}
	// memberlist has no "converged" event; poll NumMembers.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		all := true
		for _, n := range nodes {
			if n.list.Load().NumMembers() != cfg.Nodes {
				all = false
				break
			}
		}
		if all {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("memberlist: waiting for %d members: %w", cfg.Nodes, ctx.Err())
		case <-tick.C:
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("memberlist: closed during Start")
	}
	m.nodes = nodes
	m.maxMsg = base.UDPBufferSize - packetOverhead
	m.describe = describe(cfg, base, preset)
	return nil
}

// profileConfig returns the base config for cfg.Profile and the preset's
// name.
func profileConfig(cfg harness.ClusterConfig) (*ml.Config, string, error) {
	// DefaultLANConfig is memberlist's documented default ("a sane set of
	// configurations for Memberlist ... sane for most LAN environments")
	// and the base Serf/Consul build on; the DefaultLocalConfig preset
	// (tuned for loopback) is not used: nobody deploys on loopback.
	c := ml.DefaultLANConfig()
	const preset = "DefaultLANConfig"
	switch cfg.Profile {
	case harness.ProfileDefault:
	case harness.ProfileEqualised:
		if cfg.Degree < 1 {
			return nil, "", fmt.Errorf("memberlist: equalised profile needs Degree >= 1, got %d", cfg.Degree)
		}
		c.GossipNodes = cfg.Degree
		c.GossipInterval = 20 * time.Millisecond
	default:
		return nil, "", fmt.Errorf("memberlist: unknown profile %q", cfg.Profile)
	}
	c.SecretKey = nil
	c.Keyring = nil
	// A payload larger than the default packet budget can still go in one
	// gossip packet if it fits in one UDP datagram (loopback MTU is 64 KiB,
	// and the UDPBufferSize doc invites raising it to the network's MTU):
	// raise UDPBufferSize just enough. Beyond that (e.g. a 64 KiB payload)
	// it cannot be a gossip broadcast at all and Publish will fail.
	if need := cfg.MaxPayload + packetOverhead; need > c.UDPBufferSize && need <= maxUDPBufferSize {
		c.UDPBufferSize = need
	}
	return c, preset, nil
}

func describe(cfg harness.ClusterConfig, c *ml.Config, preset string) []string {
	def := ml.DefaultLANConfig()
	src := func(changed bool) string {
		if changed {
			return "set by profile " + string(cfg.Profile)
		}
		return preset + " default"
	}
	limit := c.RetransmitMult * int(math.Ceil(math.Log10(float64(cfg.Nodes+1))))
	udpNote := src(false)
	if c.UDPBufferSize != def.UDPBufferSize {
		udpNote = fmt.Sprintf("raised from %d so MaxPayload=%d fits one gossip packet", def.UDPBufferSize, cfg.MaxPayload)
	}
	return []string{
		fmt.Sprintf("library: github.com/hashicorp/memberlist v0.7.0, %d nodes in one process", cfg.Nodes),
		fmt.Sprintf("base preset: memberlist.%s() (memberlist's documented default for LANs; DefaultLocalConfig not used)", preset),
		fmt.Sprintf("GossipNodes: %d (%s)", c.GossipNodes, src(c.GossipNodes != def.GossipNodes || cfg.Profile == harness.ProfileEqualised)),
		fmt.Sprintf("GossipInterval: %v (%s)", c.GossipInterval, src(c.GossipInterval != def.GossipInterval)),
		fmt.Sprintf("RetransmitMult: %d (%s): each node sends each message to %d peers in total (RetransmitMult*ceil(log10(N+1)))", c.RetransmitMult, src(false), limit),
		fmt.Sprintf("ProbeInterval: %v, ProbeTimeout: %v, IndirectChecks: %d, PushPullInterval: %v (%s)", c.ProbeInterval, c.ProbeTimeout, c.IndirectChecks, c.PushPullInterval, src(false)),
		fmt.Sprintf("UDPBufferSize: %d (%s): largest broadcast payload %d B; Publish fails for larger payloads (no TCP fallback)", c.UDPBufferSize, udpNote, c.UDPBufferSize-packetOverhead),
		fmt.Sprintf("HandoffQueueDepth: %d (%s): received user messages beyond this backlog are dropped by memberlist", c.HandoffQueueDepth, src(false)),
		fmt.Sprintf("EnableCompression: %v (%s): LZW per packet when it shrinks it", c.EnableCompression, src(false)),
		"encryption: off (SecretKey and Keyring nil, as in the preset); no label",
		"transport: memberlist NetTransport on 127.0.0.1, ephemeral port (UDP + TCP), wrapped by a counting Transport",
		"join: every node Joins node-0; Start returns when every node has NumMembers()==N",
		"broadcast: payload queued as a UniqueBroadcast in the node's TransmitLimitedQueue (NumNodes=NumMembers, RetransmitMult as above, no Prune: queue unbounded), sent via Delegate.GetBroadcasts piggybacked on gossip and probe packets",
		"re-broadcast: a node re-queues a message on first receipt (id = first 8 bytes); every receipt is delivered (NotifyMsg), repeats are not re-queued; the publisher marks its own message seen",
		"wire msgs: UDP packets sent, all of them (gossip, probes, acks, compound packets); memberlist packs several broadcasts per packet",
		"wire bytes: UDP payload bytes + TCP stream bytes in both directions (join, push-pull, TCP fallback probes); IP/UDP/TCP headers not counted",
		fmt.Sprintf("Seed: unused (%d); memberlist picks gossip targets with its own randomness", cfg.Seed),
	}
}

// Publish implements harness.Impl.
func (m *Impl) Publish(idx int, payload []byte) error {
	m.mu.Lock()
	nodes, maxMsg, closed := m.nodes, m.maxMsg, m.closed
	m.mu.Unlock()
	if closed {
		return errors.New("memberlist: closed")
	}
	if idx < 0 || idx >= len(nodes) {
		return fmt.Errorf("memberlist: no node %d", idx)
	}
	if len(payload) > maxMsg {
		return fmt.Errorf("memberlist: payload %d B does not fit in one gossip packet (max %d B with UDPBufferSize %d)", len(payload), maxMsg, maxMsg+packetOverhead)
	}
	if len(payload) == 0 {
		return errors.New("memberlist: empty payload")
	}
	n := nodes[idx]
	if len(payload) >= 8 {
		n.firstSeen(binary.BigEndian.Uint64(payload))
	}
	n.queue.QueueBroadcast(&broadcast{msg: bytes.Clone(payload)})
	return nil
}

// Wire implements harness.Impl.
func (m *Impl) Wire() (msgs, byteCount uint64) {
	return m.udpPackets.Load(), m.udpBytes.Load() + m.tcpBytes.Load()
}

// Describe implements harness.Impl.
func (m *Impl) Describe() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.describe...)
}

// HandoffDrops is how many received messages memberlist dropped because a
// node's handoff queue (HandoffQueueDepth) was full, counted from its
// "handler queue full" warnings.
func (m *Impl) HandoffDrops() uint64 { return m.handoffDrops.Load() }

// Queued is the total number of user broadcasts waiting in all nodes'
// TransmitLimitedQueues.
func (m *Impl) Queued() int {
	m.mu.Lock()
	nodes := m.nodes
	m.mu.Unlock()
	total := 0
	for _, n := range nodes {
		total += n.queue.NumQueued()
	}
	return total
}

// Close implements harness.Impl. It shuts every node down without a
// graceful Leave (the cluster is torn down as a whole).
func (m *Impl) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	nodes := m.nodes
	m.mu.Unlock()

	var errs []error
	for _, n := range nodes {
		if err := n.list.Load().Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", n.idx, err))
		}
	}
	return errors.Join(errs...)
}

// countingTransport counts what memberlist's NetTransport puts on the wire.
type countingTransport struct {
	*ml.NetTransport
	impl *Impl
}

var _ ml.NodeAwareTransport = (*countingTransport)(nil)

func (t *countingTransport) count(n int) {
	t.impl.udpPackets.Add(1)
	t.impl.udpBytes.Add(uint64(n))
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ts, err := t.NetTransport.WriteTo(b, addr)
	if err == nil {
		t.count(len(b))
	}
	return ts, err
}

func (t *countingTransport) WriteToAddress(b []byte, addr ml.Address) (time.Time, error) {
	ts, err := t.NetTransport.WriteToAddress(b, addr)
	if err == nil {
		t.count(len(b))
	}
	return ts, err
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &t.impl.tcpBytes}, nil
}

func (t *countingTransport) DialAddressTimeout(addr ml.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &t.impl.tcpBytes}, nil
}

// countingConn counts both directions of a stream on the dialing side:
// every stream is between two of our nodes, so this is every TCP byte
// exactly once, without wrapping accepted connections.
type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(uint64(n))
	return n, err
}

// logCounter discards memberlist's log output, counting the handoff-queue
// drop warnings.
type logCounter struct{ drops *atomic.Uint64 }

var handoffFull = []byte("handler queue full")

func (l *logCounter) Write(p []byte) (int, error) {
	if bytes.Contains(p, handoffFull) {
		l.drops.Add(1)
	}
	return len(p), nil
}

var _ io.Writer = (*logCounter)(nil)
