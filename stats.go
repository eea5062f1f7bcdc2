package gossip

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/swim"
)

// Stats is a snapshot of a node's counters and state. Every number in it
// is defined once, here: its `stat` tag names it (group.name) and says
// whether it is a counter (only grows) or a gauge, its `help` tag says
// what it counts. Counters() lists them from these definitions, and the
// Status RPC, gossipctl status and the Prometheus metrics (Collector) are
// built from that list, so a counter added here appears everywhere;
// TestStatsDefined fails for a number without a definition.
//
// The metric of a number is gossip_<group>_<name> (plus _total for a
// counter) unless a `metric` tag names it: `metric:"family"` or
// `metric:"family{label=value}"`, several numbers sharing one family with
// one label (the family's help is in metricFamilyHelp). docs/METRICS.md
// describes every metric; TestMetricsDocumented checks it.
type Stats struct {
	ID        string
	Endpoint  string
	Neighbors int `stat:"core.neighbors,gauge" help:"neighbours (stream and unary)"`
	Uptime    time.Duration
	Ready     bool // joined a cluster, or marked ready (see MarkReady)
	StartedAt time.Time

	Published      uint64 `stat:"core.published,counter" metric:"gossip_messages_published_total" help:"messages this node originated (Publish, or a client's PutMessageToClient)"`
	Received       uint64 `stat:"core.received,counter" metric:"gossip_messages_received_total" help:"valid copies received, first and duplicate"`
	Delivered      uint64 `stat:"core.delivered,counter" metric:"gossip_messages_delivered_total" help:"messages accepted for the first time (delivered once)"`
	DeliveredBytes uint64 `stat:"core.delivered_bytes,counter" metric:"gossip_messages_delivered_payload_bytes_total" help:"payload bytes of the messages delivered"`
	Duplicates     uint64 `stat:"core.duplicates,counter" metric:"gossip_messages_duplicate_total" help:"copies suppressed as already seen"`
	Invalid        uint64 `stat:"core.invalid,counter" metric:"gossip_messages_rejected_total{reason=invalid}" help:"messages rejected by validation"`
	Malformed      uint64 `stat:"core.malformed,counter" metric:"gossip_messages_rejected_total{reason=malformed}" help:"requests whose bytes did not decode as a GossipMessage"`
	Forwards       uint64 `stat:"core.forwards,counter" help:"unary forwards planned: one per fresh message and chosen unary neighbour"`
	Sent           uint64 `stat:"core.sent,counter" help:"unary RPCs sent: forward attempts, retries included"`
	Acked          uint64 `stat:"core.acked,counter" help:"unary attempts acknowledged"`
	AckFailed      uint64 `stat:"core.ack_failed,counter" help:"unary attempts failed or timed out"`
	Retries        uint64 `stat:"core.retries,counter" help:"unary attempts after the first"`
	GaveUp         uint64 `stat:"core.gave_up,counter" help:"unary forwards abandoned after MaxAttempts or a rejection"`
	Forgotten      uint64 `stat:"core.forgotten,counter" help:"receipts undone because the application queue stayed full"`
	Expired        uint64 `stat:"core.expired,counter" help:"hot entries retired by decay"`
	Historic       uint64 `stat:"core.historic,counter" metric:"gossip_messages_historic_total" help:"first receipts not delivered: published before this node's history horizon (a new node without --catch-up)"`
	LogFirst       uint64 `stat:"core.log_first,gauge" metric:"gossip_log_first_offset" help:"the earliest offset the delivery log retains"`
	LogHead        uint64 `stat:"core.log_head,gauge" metric:"gossip_log_head_offset" help:"the last offset the delivery log committed"`

	SendsDropped  uint64 `stat:"core.sends_dropped,counter" help:"unary forwards never started: MaxInflightSends reached until the caller's deadline"`
	InflightSends int    `stat:"core.inflight_sends,gauge" help:"unary forwards in flight"`
	DeliveryQueue int    `stat:"core.delivery_queue,gauge" help:"deliveries waiting for the DeliveryHandler and subscriptions"`

	Subscribers      int    `stat:"core.subscribers,gauge" help:"live subscriptions"`
	SubscriberMissed uint64 `stat:"core.subscriber_missed,counter" help:"messages subscriptions missed because they fell behind"`
	SubscriberBytes  int64  `stat:"core.subscriber_bytes,gauge" help:"bytes held in live subscriptions' buffers (payload, ids and a Delivery each; bounded by WithSubscriberBytes)"`
	ReceiptsSent     uint64 `stat:"core.trace_receipts_sent,counter" help:"receipts of traced messages sent to their origins"`
	ReceiptsDropped  uint64 `stat:"core.trace_receipts_dropped,counter" help:"receipts of traced messages not sent: queue full, origin unknown or unreachable"`
	Watchers         int    `stat:"core.watchers,gauge" help:"live watchers of the node's events (Watch: gossipctl watch, the dashboard)"`

	Active       int           `stat:"core.active,gauge" help:"messages in hot state"`
	Seen         int           `stat:"core.seen,gauge" help:"ids in the long-TTL cache (estimate)"`
	SeenEvicted  uint64        `stat:"core.seen_evicted,counter" help:"ids evicted early from the long-TTL cache (MaxSeen)"`
	RetiredEarly uint64        `stat:"core.retired_early,counter" help:"hot entries retired early (MaxActive)"`
	TTL          time.Duration `stat:"core.ttl_seconds,gauge" help:"the adaptive TTL of hot state, seconds"`
	Diameter     int           `stat:"core.diameter,gauge" help:"diameter estimate, hops"`
	HopLatency   time.Duration `stat:"core.hop_latency_seconds,gauge" help:"per-hop latency estimate, seconds"`

	Stream     StreamStats     // the streaming transport (zero when disabled)
	Membership MembershipStats // membership (zero before it started)
	Security   SecurityStats   // authentication and authorization (zero without WithSecurity)
}

// StreamStats are the counters of the streaming transport: Plumtree,
// anti-entropy, queues, streams and the message store. Counts of messages
// are of message copies (one per message and peer).
type StreamStats struct {
	StreamPeers int `stat:"stream.peers,gauge" help:"neighbours sent to on streams"`
	UnaryPeers  int `stat:"stream.unary_peers,gauge" help:"neighbours sent to with PutMessageToClient (no stream support, or streaming disabled)"`
	Inbound     int `stat:"stream.inbound,gauge" help:"streams other nodes opened to this one"`

	EagerSent      uint64 `stat:"stream.eager_sent,counter" help:"messages pushed eagerly (Plumtree)"`
	IHavesSent     uint64 `stat:"stream.ihaves_sent,counter" help:"messages announced lazily"`
	IHavesReceived uint64 `stat:"stream.ihaves_received,counter" help:"message numbers announced to this node"`
	PrunesSent     uint64 `stat:"stream.prunes_sent,counter" help:"redundant copies answered with PRUNE"`
	PrunesReceived uint64 `stat:"stream.prunes_received,counter" help:"PRUNEs received (per source)"`
	GraftsSent     uint64 `stat:"stream.grafts_sent,counter" help:"message numbers requested by GRAFT"`
	GraftsServed   uint64 `stat:"stream.grafts_served,counter" help:"messages sent in answer to GRAFTs"`
	GraftsDelayed  uint64 `stat:"stream.grafts_delayed,counter" help:"due grafts put off: the sequence was still arriving in order"`
	GraftsYoung    uint64 `stat:"stream.grafts_young,counter" help:"announcements waited for a tenth of the graft timeout, not a whole one: no eager copy of their source had reached this node (young tree)"`
	ParentSwitches uint64 `stat:"stream.parent_switches,counter" help:"tree parents replaced by a path that kept winning the race"`
	TreeSwaps      uint64 `stat:"stream.tree_swaps,counter" help:"tree parents replaced by an announcer at least two hops closer to the source"`
	DigestsSent    uint64 `stat:"stream.digests_sent,counter" help:"anti-entropy digests sent"`
	DigestsRecv    uint64 `stat:"stream.digests_received,counter" help:"anti-entropy digests received"`
	SyncSent       uint64 `stat:"stream.sync_sent,counter" help:"messages sent in answer to digests"`
	Repaired       uint64 `stat:"stream.repaired,counter" metric:"gossip_messages_repaired_total" help:"messages first received by GRAFT or anti-entropy"`
	HolesSkipped   uint64 `stat:"stream.holes_skipped,counter" help:"message numbers given up: no stream neighbour can send them any more (each logged)"`
	Missing        uint64 `stat:"stream.missing,gauge" help:"message numbers wanted and not yet received (below the highest received of their sequence)"`

	CopiesSent     uint64 `stat:"stream.copies_sent,counter" help:"messages written to streams (eager, repairs, re-sends)"`
	CopiesAcked    uint64 `stat:"stream.copies_acked,counter" help:"of those, acknowledged by the peer"`
	EnvelopesSent  uint64 `stat:"stream.envelopes_sent,counter" help:"stream frames (batches) sent"`
	EnvelopesRecv  uint64 `stat:"stream.envelopes_received,counter" help:"stream frames received"`
	Resent         uint64 `stat:"stream.resent,counter" help:"messages re-sent because their stream broke before the ACK"`
	Reconnects     uint64 `stat:"stream.reconnects,counter" help:"streams re-opened after a failure"`
	UnaryFallbacks uint64 `stat:"stream.unary_fallbacks,counter" help:"neighbours that answered the stream with Unimplemented"`
	BadFrames      uint64 `stat:"stream.bad_frames,counter" metric:"gossip_messages_rejected_total{reason=bad_frame}" help:"stream frames or messages that did not decode or validate"`
	Refused        uint64 `stat:"stream.refused,counter" help:"messages a peer cannot take (larger than it accepts): never sent to it"`

	QueuedBytes     int    `stat:"stream.queued_bytes,gauge" help:"bytes queued for streams"`
	Deferred        uint64 `stat:"stream.deferred,counter" help:"messages announced instead of pushed: the peer's queue was over StreamQueueBytes"`
	Withdrawn       uint64 `stat:"stream.withdrawn,counter" help:"queued messages announced instead of pushed: the peer PRUNEd their source meanwhile"`
	FramesDropped   uint64 `stat:"stream.frames_dropped,counter" help:"frames dropped: a queue over 4×StreamQueueBytes, or no stream to the peer (repair covers them)"`
	PublishWaits    uint64 `stat:"stream.publish_waits,counter" help:"publishes that waited because the node or the cluster was saturated"`
	PublishRejected uint64 `stat:"stream.publish_rejected,counter" metric:"gossip_publish_saturated_total" help:"publishes refused with ResourceExhausted: still saturated at their deadline"`
	Congested       bool   `stat:"stream.congested,gauge" help:"1 while the store is over StoreBytes with messages a neighbour still lacks (publishers wait)"`

	Stored             int    `stat:"stream.stored,gauge" help:"messages kept for repair"`
	StoreEvicted       uint64 `stat:"stream.store_evicted,counter" help:"messages the byte bound evicted before their age"`
	StoreEvictedUnsafe uint64 `stat:"stream.store_evicted_unsafe,counter" help:"of those, ones a live stream neighbour was not known to hold (twice StoreBytes reached)"`
	StoreExpiredUnsafe uint64 `stat:"stream.store_expired_unsafe,counter" help:"messages that reached LongTTL while a live stream neighbour was not known to hold them"`
}

// MembershipStats are the counters of membership (SWIM).
type MembershipStats struct {
	Alive       int    `stat:"membership.alive,gauge" metric:"gossip_members{state=alive}" help:"members alive, this node included"`
	Suspect     int    `stat:"membership.suspect,gauge" metric:"gossip_members{state=suspect}" help:"members suspected"`
	Dead        int    `stat:"membership.dead,gauge" metric:"gossip_members{state=dead}" help:"members declared dead, until reaped"`
	Left        int    `stat:"membership.left,gauge" metric:"gossip_members{state=left}" help:"members that left, until reaped"`
	Incarnation uint64 `stat:"membership.incarnation,gauge" help:"this node's incarnation"`
	Health      int    `stat:"membership.local_health,gauge" help:"Lifeguard's local health multiplier (0 is healthy)"`
	Ignored     uint64 `stat:"membership.ignored_updates,counter" help:"updates ignored: they raised an incarnation by more than 2^32"`
	Reconnects  uint64 `stat:"membership.reconnect_attempts,counter" help:"syncs sent to seeds and reaped members (partition healing)"`
	Formers     int    `stat:"membership.reconnect_candidates,gauge" help:"reaped dead members still tried"`

	// Changes by the state a member moved to: joined or alive again
	// (alive), suspected, declared dead, left. New incarnations of a live
	// member and reaps are not state changes.
	ToAlive   uint64 `stat:"membership.changes_to_alive,counter" metric:"gossip_member_state_changes_total{to=alive}" help:"members that joined or became alive again"`
	ToSuspect uint64 `stat:"membership.changes_to_suspect,counter" metric:"gossip_member_state_changes_total{to=suspect}" help:"members suspected"`
	ToDead    uint64 `stat:"membership.changes_to_dead,counter" metric:"gossip_member_state_changes_total{to=dead}" help:"members declared dead"`
	ToLeft    uint64 `stat:"membership.changes_to_left,counter" metric:"gossip_member_state_changes_total{to=left}" help:"members that left"`
}

// Stats returns a snapshot of the node's counters and state.
func (n *GossipNode) Stats() Stats {
	n.mu.Lock()
	c := n.core.Counters()
	st := n.core.Storage().Stats()
	nbs := n.core.Neighbors()
	ss := StreamStats{
		EagerSent: c.EagerSent, IHavesSent: c.IHavesSent, IHavesReceived: c.IHavesReceived,
		PrunesSent: c.PrunesSent, PrunesReceived: c.PrunesReceived, GraftsSent: c.GraftsSent,
		GraftsServed: c.GraftsServed, GraftsDelayed: c.GraftsDelayed, GraftsYoung: c.GraftsYoung, ParentSwitches: c.ParentSwitches, TreeSwaps: c.TreeSwaps,
		DigestsSent: c.DigestsSent, DigestsRecv: c.DigestsReceived, SyncSent: c.SyncSent, Repaired: c.Repaired,
		HolesSkipped: c.HolesSkipped, Missing: c.Missing, Stored: n.core.StoredMessages(),
		StoreEvicted: c.StoreEvicted, StoreEvictedUnsafe: c.StoreEvictedUnsafe, StoreExpiredUnsafe: c.StoreExpiredUnsafe,
	}
	for _, t := range nbs {
		if k, _ := n.core.PeerKindOf(t.ID); k == core.KindStream {
			ss.StreamPeers++
		} else {
			ss.UnaryPeers++
		}
	}
	n.mu.Unlock()
	n.linksMu.Lock()
	for _, m := range n.inbound {
		ss.Inbound += len(m)
	}
	n.linksMu.Unlock()
	ss.EnvelopesSent, ss.EnvelopesRecv = n.sc.envelopesSent.Load(), n.sc.envelopesRecv.Load()
	ss.CopiesSent, ss.CopiesAcked = n.sc.copiesSent.Load(), n.sc.copiesAcked.Load()
	ss.Resent, ss.Reconnects, ss.UnaryFallbacks = n.sc.resent.Load(), n.sc.reconnects.Load(), n.sc.unaryFallbacks.Load()
	ss.BadFrames, ss.QueuedBytes, ss.Deferred, ss.Withdrawn = n.sc.badFrames.Load(), n.qtotal.load(), n.sc.deferred.Load(), n.sc.withdrawn.Load()
	ss.FramesDropped, ss.PublishWaits, ss.PublishRejected = n.sc.framesDropped.Load(), n.sc.publishWaits.Load(), n.sc.publishReject.Load()
	ss.Refused, ss.Congested = n.sc.refused.Load(), n.congested.Load()
	logFirst, logHead := n.dlog.Bounds()
	return Stats{
		ID: n.Hash, Endpoint: n.Endpoint, Neighbors: len(nbs), Uptime: time.Since(n.startedAt),
		Published: n.published.Load(), DeliveredBytes: n.deliveredBytes.Load(),
		Received: c.Received, Delivered: c.Delivered, Duplicates: c.Duplicates, Invalid: c.Invalid,
		Malformed: n.malformed.Load(),
		Forwards:  c.Forwards, Sent: c.Sent, Acked: c.Acked, AckFailed: c.AckFailed, Retries: c.Retries,
		GaveUp: c.GaveUp, Forgotten: c.Forgotten, Expired: c.Expired, Historic: c.Historic, LogFirst: logFirst, LogHead: logHead,
		SendsDropped: n.sendsDropped.Load(), InflightSends: len(n.sem), DeliveryQueue: len(n.deliveries),
		Subscribers: n.subscriberCount(), Watchers: int(n.watching.Load()), ReceiptsSent: n.sentRcpt.Load(), ReceiptsDropped: n.droppedRcpt.Load(), SubscriberMissed: n.subMissed.Load(), SubscriberBytes: n.subscriberBytes(), Ready: n.ready.Load(), StartedAt: n.startedAt,
		Active: st.Active, Seen: st.Seen, SeenEvicted: st.SeenEvicted, RetiredEarly: st.RetiredEarly,
		TTL: st.TTL, Diameter: st.Diameter, HopLatency: st.HopLatency,
		Stream:     ss,
		Membership: n.mship.stats(),
		Security:   n.securityStats(),
	}
}

// stats is the membership part of Stats.
func (m *membership) stats() MembershipStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s MembershipStats
	if m.core == nil {
		return s // no changes either: they come from the core
	}
	m.core.Each(func(mb swim.Member) {
		switch mb.State {
		case swim.Alive:
			s.Alive++
		case swim.Suspect:
			s.Suspect++
		case swim.Dead:
			s.Dead++
		case swim.Left:
			s.Left++
		}
	})
	cs := m.core.Stats()
	s.Incarnation, s.Health = m.core.Incarnation(), m.core.Health()
	s.Ignored, s.Reconnects, s.Formers = cs.Ignored, cs.Reconnects, cs.Formers
	s.ToAlive, s.ToSuspect, s.ToDead, s.ToLeft = m.changes[0].Load(), m.changes[1].Load(), m.changes[2].Load(), m.changes[3].Load()
	return s
}

// CounterKind says how a Counter's value behaves.
type CounterKind string

const (
	KindCounter CounterKind = "counter" // only grows (resets when the node restarts)
	KindGauge   CounterKind = "gauge"   // a current value
)

// Counter is one number of Stats, as its definition names it.
type Counter struct {
	Name  string // group.name, e.g. "stream.repaired"
	Group string // core, stream or membership
	Kind  CounterKind
	Help  string
	Value float64 // durations in seconds, booleans 0 or 1
}

// statField is one number of Stats: where it is and its definition.
type statField struct {
	index  []int
	name   string
	metric string // the metric tag ("" = derived from name)
	group  string
	kind   CounterKind
	help   string
}

var statFields = sync.OnceValue(func() []statField {
	var out []statField
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
				walk(f.Type, idx)
				continue
			}
			tag, ok := f.Tag.Lookup("stat")
			if !ok {
				continue
			}
			name, kind, _ := strings.Cut(tag, ",")
			group, _, _ := strings.Cut(name, ".")
			out = append(out, statField{index: idx, name: name, group: group, kind: CounterKind(kind), help: f.Tag.Get("help"), metric: f.Tag.Get("metric")})
		}
	}
	walk(reflect.TypeOf(Stats{}), nil)
	return out
})

// Counters lists the numbers of s, in the order Stats defines them.
func (s Stats) Counters() []Counter {
	v := reflect.ValueOf(s)
	fields := statFields()
	out := make([]Counter, len(fields))
	for i, f := range fields {
		out[i] = Counter{Name: f.name, Group: f.group, Kind: f.kind, Help: f.help, Value: numeric(v.FieldByIndex(f.index))}
	}
	return out
}

// numeric is a Stats field's value as a float: durations in seconds.
func numeric(v reflect.Value) float64 {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.Seconds()
	case bool:
		if x {
			return 1
		}
		return 0
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return float64(v.Int())
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		return float64(v.Uint())
	case reflect.Float64:
		return v.Float()
	}
	panic(fmt.Sprintf("gossip: Stats field of kind %v has a stat tag", v.Kind())) // a broken definition
}
