package gossip

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/durable"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// SyncPolicy says when the delivery log's group commits reach stable
// storage: "always" (fsync every commit), "never" (the OS flushes), or a
// duration (fsync that often). See WithDataDir and docs/DESIGN.md §13.
type SyncPolicy = durable.SyncPolicy

// ParseSyncPolicy parses "always", "never" or a positive duration
// ("100ms").
func ParseSyncPolicy(s string) (SyncPolicy, error) { return durable.ParseSync(s) }

// SyncAlways is the safest policy: every commit is fsynced before the
// messages in it are acknowledged or delivered.
var SyncAlways = SyncPolicy{Mode: durable.SyncAlways}

// StateFileName is the node's database under its data directory.
const StateFileName = durable.FileName

// Errors about the node's state on disk (WithDataDir). New returns them
// wrapped in an error naming the file and what to do; nothing is reset.
var (
	ErrStateLocked      = durable.ErrLocked      // another process has the file open
	ErrStateCorrupt     = durable.ErrCorruptDB   // corrupt or truncated
	ErrStateOtherNode   = durable.ErrOtherNode   // written by another node id
	ErrStateNewerFormat = durable.ErrNewerFormat // written by a newer version
	ErrDiskFull         = durable.ErrDiskFull    // no space left (at open or at run time)

	// ErrOutOfRange is returned by SubscribeFrom for an offset the log
	// does not retain (or has not reached); the message names the range
	// available. OutOfRange at the RPC boundary.
	ErrOutOfRange = errors.New("offset out of range")
	// ErrStateFailed is returned by Publish after the node's state could
	// not be written (see WithStateFailure): the message may have been
	// sent, but this node could not log it. Unavailable.
	ErrStateFailed = errors.New("node state could not be written")
)

// persistOptions are the options of the delivery log and the state.
type persistOptions struct {
	dataDir   string
	sync      SyncPolicy
	catchUp   *time.Duration
	onFailure func(error)
}

// WithDataDir keeps the node's state in dir/gossip.db (bbolt): its
// identity and incarnation, what it delivered per dissemination sequence
// and its delivery log, so that a node restarted with the same id and
// directory delivers nothing twice, fetches what it missed while down,
// and keeps its log's offsets. sync is when commits reach stable storage.
// dir must exist. Without it the log lives in memory and a restart is a
// new node.
func WithDataDir(dir string, sync SyncPolicy) Option {
	return optionFunc(func(o *nodeOptions) { o.persist.dataDir, o.persist.sync = dir, sync })
}

// WithCatchUp makes a brand-new node (no state: no WithDataDir, or an
// empty one) deliver only messages published at most d before it
// started (0: only those published after). Without it a new node
// delivers whatever its peers still hold (up to LongTTL old). A node
// restarted on its own state ignores it: it delivers exactly what it
// missed.
func WithCatchUp(d time.Duration) Option {
	return optionFunc(func(o *nodeOptions) { o.persist.catchUp = &d })
}

// WithStateFailure sets a function called once (from another goroutine)
// if the node's state cannot be written at run time, e.g. the disk is
// full (errors.Is(err, ErrDiskFull)). The node then refuses publishes
// with ErrStateFailed and logs nothing more: restart it once fixed (what
// was not committed is fetched again from the peers).
func WithStateFailure(f func(error)) Option {
	return optionFunc(func(o *nodeOptions) { o.persist.onFailure = f })
}

// openLog opens the delivery log (and the state, with a data dir), and
// restores what a previous life left: epoch, what it handled, the
// messages it still retains. Before any traffic.
func (n *GossipNode) openLog(p persistOptions) error {
	n.onStateFailure = p.onFailure
	l, rec, err := durable.Open(durable.Options{
		Dir: p.dataDir, NodeID: n.Hash, Sync: p.sync,
		Retention: n.cfg.LogRetention, RetentionBytes: int64(n.cfg.LogRetentionBytes),
		KeepDelivered: n.cfg.LongTTL + historySlack,
		OnCommit:      n.committed, OnFailure: n.logFailed,
	})
	if err != nil {
		return fmt.Errorf("gossip: node state: %w", err)
	}
	n.dlog = l
	n.incarnation = rec.Incarnation
	now := time.Now()
	var h core.History
	switch {
	case rec.Existing && !rec.LastAt.IsZero():
		h.Horizon = rec.LastAt.Add(-n.cfg.LongTTL)
		h.Handled = make(map[core.SeqKey][]core.Span, len(rec.Delivered))
		for k, d := range rec.Delivered {
			spans := make([]core.Span, len(d.Spans))
			for i, sp := range d.Spans {
				spans[i] = core.Span{First: sp.First, Last: sp.Last}
			}
			h.Handled[core.SeqKey{Node: k.Node, Epoch: k.Epoch}] = spans
		}
	case p.catchUp != nil:
		h.Horizon = now.Add(-*p.catchUp)
	}
	n.restored = rec.Existing
	n.priorMembers = rec.Members
	_, n.dispatched = l.Bounds()
	n.mu.Lock()
	defer n.mu.Unlock()
	if l.Durable() {
		n.core.SetEpoch(rec.Epoch)
	}
	n.core.SetHistory(now, h)
	for _, r := range rec.Records {
		n.core.Restore(now, forwardOf(n.Hash, &r), time.Unix(0, r.At))
	}
	return nil
}

// historySlack is how much longer than LongTTL a restarted node keeps
// what it delivered of a sequence: the margin for clock skew between an
// origin's created_at and this node's clock (see core.History).
const historySlack = time.Minute

// forwardOf is the copy a node forwards of logged message r.
func forwardOf(self string, r *durable.Record) *pb.GossipMessage {
	m := &pb.GossipMessage{
		Hash: r.Hash, FromHash: self, Origin: r.Origin, Hops: r.Hops + 1, CreatedUnixNano: r.Created,
		SeqNode: r.SeqNode, SeqEpoch: r.SeqEpoch, Seq: r.Seq,
	}
	if utf8.ValidString(r.Payload) {
		m.Payload = r.Payload
	} else {
		m.BinaryPayload = []byte(r.Payload)
	}
	return m
}

// pendingDelivery is a first receipt on its way to the log; ack (for a
// message published here with a durable log) gets the commit's outcome.
type pendingDelivery struct {
	d   Delivery
	fwd *pb.GossipMessage
	ack chan error
}

func (p *pendingDelivery) record() durable.Record {
	r := durable.Record{
		Hash: p.d.Hash, Origin: p.d.Origin, From: p.d.From, Payload: p.d.Payload, Hops: p.d.Hops,
		SeqNode: p.fwd.GetSeqNode(), SeqEpoch: p.fwd.GetSeqEpoch(), Seq: p.fwd.GetSeq(),
	}
	if !p.d.CreatedAt.IsZero() {
		r.Created = p.d.CreatedAt.UnixNano()
	}
	if p.ack != nil {
		r.Note = p.ack
	}
	return r
}

// deliveryOf is the Delivery of logged record r.
func deliveryOf(r *durable.Record) Delivery {
	d := Delivery{
		Hash: r.Hash, Origin: r.Origin, From: r.From, Payload: r.Payload, Hops: r.Hops,
		ReceivedAt: time.Unix(0, r.At), Offset: r.Offset,
	}
	if r.Created != 0 {
		d.CreatedAt = time.Unix(0, r.Created)
	}
	return d
}

// committed takes each committed batch, in offset order: publishers
// waiting for it are answered, and its records go, copied one by one
// (the log may reuse the batch), to the dispatcher (dispatchLoop), which
// hands them to the handler and the subscriptions — a goroutine apart,
// so that a handler that publishes does not wait for itself.
func (n *GossipNode) committed(batch []durable.Record) {
	for i := range batch {
		if ack, ok := batch[i].Note.(chan error); ok {
			ack <- nil
			batch[i].Note = nil
		}
	}
	for i := range batch {
		n.dispatchQ <- batch[i]
	}
}

// dispatchLoop hands committed messages to the DeliveryHandler and the
// live subscriptions, in offset order.
func (n *GossipNode) dispatchLoop() {
	defer close(n.dispatchDone)
	for r := range n.dispatchQ {
		d := deliveryOf(&r)
		if n.deliver != nil {
			n.deliver(d)
		}
		n.publishToSubscribers(d)
	}
}

// logFailed is the log's commit failure: publishers waiting are told,
// and the owner (WithStateFailure).
func (n *GossipNode) logFailed(err error, lost []durable.Record) {
	for i := range lost {
		if ack, ok := lost[i].Note.(chan error); ok {
			ack <- err
		}
	}
	n.logger.Error("node state could not be written: this node logs and delivers nothing more until restarted", "err", err)
	if f := n.onStateFailure; f != nil {
		go f(err)
	}
}

// markHistoric records that a historic first receipt was handled.
func (n *GossipNode) markHistoric(fwd *pb.GossipMessage) {
	n.dlog.MarkHandled(durable.Key{Node: fwd.GetSeqNode(), Epoch: fwd.GetSeqEpoch()}, fwd.GetSeq())
}

// Incarnation counts the node's lives on its data directory (1 for the
// first, and always 1 without WithDataDir).
func (n *GossipNode) Incarnation() uint64 { return n.incarnation }

// Restored reports whether the node started from a previous life's state.
func (n *GossipNode) Restored() bool { return n.restored }

// LogBounds returns the offsets the delivery log retains, first..head
// (first = head+1 when it retains none; head 0 before the first
// message).
func (n *GossipNode) LogBounds() (first, head uint64) { return n.dlog.Bounds() }

// StatePath is the node's state file ("" without WithDataDir).
func (n *GossipNode) StatePath() string { return n.dlog.Path() }

// SavedMembers are the addresses of the other members the node's
// previous life knew last (with WithDataDir; nil otherwise): seeds to
// rejoin with when none are given. The daemon uses them.
func (n *GossipNode) SavedMembers() []string { return slices.Clone(n.priorMembers) }

// saveMembers records the addresses of the live other members when they
// changed (with a data dir), for the next life. A node left alone keeps
// the last list it had: those are the members to look for after a
// restart. It runs on the decay ticker and after a Join.
func (n *GossipNode) saveMembers() {
	if !n.dlog.Durable() {
		return
	}
	n.membersMu.Lock()
	defer n.membersMu.Unlock()
	var addrs []string
	for _, m := range n.Members() {
		if !m.Self && m.Address != "" && (m.State == MemberAlive || m.State == MemberSuspect) {
			addrs = append(addrs, m.Address)
		}
	}
	sort.Strings(addrs)
	if len(addrs) == 0 || slices.Equal(addrs, n.savedMembers) {
		return
	}
	if err := n.dlog.SaveMembers(addrs); err != nil {
		n.logger.Warn("could not save the member list", "err", err)
		return
	}
	n.savedMembers = addrs
	n.logger.Debug("member list saved", "members", len(addrs))
}
