package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpc-gossip/gossip/internal/core"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// This file is the streaming transport's runtime: the Stream handler
// (inbound streams), the per-neighbour outbound links (link.go), and
// handleEnvelope, which feeds received frames to the core and routes its
// answers. See docs/DESIGN.md §6a.

// streamCounters are the runtime counters of the streaming transport.
type streamCounters struct {
	copiesSent     atomic.Uint64 // messages written to outbound streams
	copiesAcked    atomic.Uint64 // of those, covered by the neighbour's ACK
	envelopesSent  atomic.Uint64
	envelopesRecv  atomic.Uint64
	deferred       atomic.Uint64 // eager messages announced instead (slow neighbour)
	withdrawn      atomic.Uint64 // queued eager messages announced instead (the neighbour PRUNEd their source)
	framesDropped  atomic.Uint64 // frames dropped over a queue's hard bound, or with no stream to the peer
	resent         atomic.Uint64 // messages re-sent after a stream broke before their ACK
	reconnects     atomic.Uint64 // outbound streams re-established
	unaryFallbacks atomic.Uint64 // neighbours that answered Unimplemented
	badFrames      atomic.Uint64 // stream frames that did not decode or validate
	publishWaits   atomic.Uint64 // publishes that waited for room (node saturated)
	publishReject  atomic.Uint64 // publishes refused: still saturated at their deadline
}

// replyTo is where answers to a received frame go: the stream it came on.
type replyTo interface {
	reply(f core.Frame)
}

// inboundConn is a stream some peer opened to this node.
type inboundConn struct {
	n    *GossipNode
	peer string
	q    *sendQueue
}

func (c *inboundConn) reply(f core.Frame) { c.n.pushFrame(c.peer, c.q, f) }

// pushFrame queues f on q (a stream to peer), counting degradations.
func (n *GossipNode) pushFrame(peer string, q *sendQueue, f core.Frame) {
	switch q.push(f) {
	case deferred:
		n.sc.deferred.Add(1)
	case dropped:
		n.sc.framesDropped.Add(1)
		n.logger.Debug("stream queue full: frame dropped", "peer", peer, "kind", f.Kind)
	}
}

// sendTo queues f for peer: on the outbound link to it when it is a
// neighbour, otherwise on a stream it opened to this node.
func (n *GossipNode) sendTo(peer string, f core.Frame) {
	n.linksMu.Lock()
	l := n.links[peer]
	var in *inboundConn
	if l == nil {
		for c := range n.inbound[peer] {
			in = c
			break
		}
	}
	n.linksMu.Unlock()
	switch {
	case l != nil:
		l.reply(f)
	case in != nil:
		in.reply(f)
	default:
		n.sc.framesDropped.Add(1)
	}
}

// dispatch queues the core's frames for stream neighbours.
func (n *GossipNode) dispatch(outs []core.Out) {
	for _, o := range outs {
		n.sendTo(o.Peer, o.Frame)
	}
}

// batchBytes bounds the frames of one Envelope (at least one frame always
// goes, and one message always fits the receiver's limit, ServerOptions').
// Large enough that a batch amortises a stream write over about 150
// 100-byte messages; small enough that the marshalled envelope (frames
// plus a few bytes of framing each, which frameBytes over-counts) fits
// gRPC's 32 KiB buffer tier: the next tier is 1 MiB, and gRPC zeroes a
// pooled buffer on every Get — with 64 KiB batches that clearing was 5%
// of a saturated cluster's CPU.
const batchBytes = 28 << 10

// ServeStream serves Gossip.Stream (transport.Handler): a peer's stream of
// Envelopes to this node, until it ends or ctx (the stream's context) is
// done. The first envelope must say who the peer is (hello). Each
// envelope is handled in order; answers and the cumulative ACK go back on
// the same stream. Transports call it; the gRPC server does through
// Stream.
func (n *GossipNode) ServeStream(ctx context.Context, stream transport.Stream) error {
	n.closeMu.RLock()
	if n.closed {
		n.closeMu.RUnlock()
		return status.Error(codes.Unavailable, ErrClosed.Error())
	}
	n.wg.Add(1)
	n.closeMu.RUnlock()
	defer n.wg.Done()

	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello.GetId() == "" || len(hello.GetId()) > n.cfg.MaxHashBytes || hello.GetId() == n.Hash {
		n.sc.badFrames.Add(1)
		return status.Errorf(codes.InvalidArgument, "stream: the first envelope must carry a valid hello (peer id of 1..%d bytes, not this node's)", n.cfg.MaxHashBytes)
	}
	c := &inboundConn{n: n, peer: hello.GetId(), q: newSendQueue(n.qtotal, n.cfg.StreamQueueBytes)}
	n.linksMu.Lock()
	if n.inbound[c.peer] == nil {
		n.inbound[c.peer] = make(map[*inboundConn]struct{})
	}
	n.inbound[c.peer][c] = struct{}{}
	n.linksMu.Unlock()
	defer func() {
		n.linksMu.Lock()
		delete(n.inbound[c.peer], c)
		if len(n.inbound[c.peer]) == 0 {
			delete(n.inbound, c.peer)
		}
		n.linksMu.Unlock()
		c.q.drain()
	}()

	// Say who we are, then read on another goroutine while this one
	// writes answers and ACKs.
	if err := stream.Send(&pb.Envelope{Hello: &pb.Hello{Id: n.Hash, Address: n.Endpoint}}); err != nil {
		return err
	}
	recvDone := make(chan error, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		recvDone <- n.readStream(stream, c.peer, c, first, func(processed uint64) { c.q.owe(processed) })
	}()
	for {
		select {
		case err := <-recvDone:
			if err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-n.ctx.Done():
			return status.Error(codes.Unavailable, "node shutting down")
		case <-ctx.Done():
			return ctx.Err()
		case <-c.q.wake:
		}
		if err := n.writeBatches(stream, c.q, nil); err != nil {
			return err
		}
	}
}

// readStream handles envelopes from peer until the stream ends; first, if
// not nil, was already received. After each envelope it reports how many
// it has handled (the cumulative ACK owed to the peer).
func (n *GossipNode) readStream(stream transport.Stream, peer string, reply replyTo, first *pb.Envelope, handled func(uint64)) error {
	var count uint64
	env := first
	for {
		if env == nil {
			var err error
			if env, err = stream.Recv(); err != nil {
				return err
			}
		}
		n.sc.envelopesRecv.Add(1)
		if err := n.handleEnvelope(peer, env, reply); err != nil {
			return err
		}
		count++
		if handled != nil && (len(env.GetMessages()) > 0 || len(env.GetRepairs()) > 0) {
			handled(count)
		}
		env = nil
	}
}

// writeBatches sends what q holds, one envelope per batch, until it is
// empty. sent, if not nil, is told about each envelope sent.
func (n *GossipNode) writeBatches(stream interface{ Send(*pb.Envelope) error }, q *sendQueue, sent func(env *pb.Envelope, batch []core.Frame)) error {
	for {
		batch, ack, ok := q.take(batchBytes)
		if !ok {
			return nil
		}
		env := envelope(batch, ack)
		if err := stream.Send(env); err != nil {
			q.requeue(batch)
			return err
		}
		n.sc.envelopesSent.Add(1)
		n.sc.copiesSent.Add(uint64(len(env.GetMessages()) + len(env.GetRepairs())))
		if sent != nil {
			sent(env, batch)
		}
	}
}

// handleEnvelope feeds one received envelope to the core and routes the
// answers. It returns an error only when the node is closing.
func (n *GossipNode) handleEnvelope(peer string, env *pb.Envelope, reply replyTo) error {
	now := time.Now()
	if len(env.GetMessages())+len(env.GetRepairs()) > 0 {
		if err := n.receiveWire(now, peer, env.GetMessages(), core.ViaEager, reply); err != nil {
			return err
		}
		if err := n.receiveWire(now, peer, env.GetRepairs(), core.ViaRepair, reply); err != nil {
			return err
		}
	}
	var answers []core.Frame
	var outs []core.Out
	n.mu.Lock()
	if len(env.GetPrune()) > 0 {
		n.core.HandlePrune(peer, env.GetPrune())
	}
	if len(env.GetIhave()) > 0 {
		outs = n.core.HandleIHave(now, peer, env.GetIhave())
	}
	if len(env.GetGraft()) > 0 {
		answers = append(answers, n.core.HandleGraft(now, peer, env.GetGraft())...)
	}
	if d := env.GetDigest(); d != nil {
		answers = append(answers, n.core.HandleDigest(now, peer, d)...)
	}
	n.mu.Unlock()
	if len(env.GetPrune()) > 0 {
		n.withdraw(peer, env.GetPrune())
	}
	for _, f := range answers {
		reply.reply(f)
	}
	n.dispatch(outs)
	return nil
}

// withdraw turns the eager copies of the given sources' messages queued
// for peer into announcements (peer PRUNEd them).
func (n *GossipNode) withdraw(peer string, sources []string) {
	n.linksMu.Lock()
	qs := make([]*sendQueue, 0, 1+len(n.inbound[peer]))
	if l := n.links[peer]; l != nil {
		qs = append(qs, l.q)
	}
	for c := range n.inbound[peer] {
		qs = append(qs, c.q)
	}
	n.linksMu.Unlock()
	for _, q := range qs {
		for _, src := range sources {
			n.sc.withdrawn.Add(uint64(q.withdraw(src)))
		}
	}
}

// receiveWire handles serialized messages from a stream: decode, core,
// delivery, forwards. A message that does not decode or validate is
// counted and skipped (the rest of the batch is fine).
func (n *GossipNode) receiveWire(now time.Time, peer string, wires [][]byte, via core.Via, reply replyTo) error {
	if len(wires) == 0 {
		return nil
	}
	type fresh struct {
		res  core.Result
		from string
		hops uint32
	}
	var accepted []fresh
	var prunes []string
	msgs := make([]*pb.GossipMessage, 0, len(wires))
	for _, w := range wires {
		m := new(pb.GossipMessage)
		if err := proto.Unmarshal(w, m); err != nil {
			n.sc.badFrames.Add(1)
			n.logger.Warn("stream: undecodable message", "peer", peer, "err", err)
			continue
		}
		if m.GetFromHash() == "" {
			m.FromHash = peer
		}
		msgs = append(msgs, m)
	}
	n.mu.Lock()
	for _, m := range msgs {
		res, err := n.core.ReceiveVia(now, m, via)
		if err != nil {
			n.sc.badFrames.Add(1)
			n.logger.Warn("stream: rejected message", "peer", peer, "hash", logID(m.GetHash()), "err", err)
			continue
		}
		if res.Prune != "" && !slices.Contains(prunes, res.Prune) {
			prunes = append(prunes, res.Prune)
		}
		if res.Fresh {
			accepted = append(accepted, fresh{res: res, from: m.GetFromHash(), hops: m.GetHops()})
		}
	}
	n.mu.Unlock()
	for _, src := range prunes {
		reply.reply(core.Frame{Kind: core.FramePrune, Range: &pb.SeqRange{Node: src}})
	}
	for i, a := range accepted {
		if err := n.enqueue(n.ctx, a.res.Forward, a.from, a.hops, now); err != nil {
			// Closing: what was not delivered is forgotten, so a peer's
			// later copy counts as new.
			n.mu.Lock()
			for _, b := range accepted[i:] {
				n.core.Forget(b.res.Forward.GetHash())
			}
			n.mu.Unlock()
			return err
		}
		n.dispatch(a.res.Out)
		if len(a.res.Targets) > 0 {
			n.forward(n.ctx, a.res.Targets, a.res.Forward)
		}
	}
	return nil
}

// streamLoop runs the timers of the streaming protocol: every quarter of
// GraftTimeout the due grafts, every half a flush of the lazy frames
// (announcements, prunes and ACKs wait at most that long when no message
// goes their way, and those of many messages share an envelope), and a
// digest to a random stream neighbour
// every SyncInterval (±10% so that nodes started together do not
// synchronise).
func (n *GossipNode) streamLoop() {
	defer n.wg.Done()
	graftTick := time.NewTicker(max(n.cfg.GraftTimeout/4, time.Millisecond))
	defer graftTick.Stop()
	jitter := func() time.Duration {
		return time.Duration(float64(n.cfg.SyncInterval) * (0.9 + 0.2*rand.Float64()))
	}
	sync := time.NewTimer(jitter())
	defer sync.Stop()
	tick := 0
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-graftTick.C:
			n.mu.Lock()
			outs := n.core.Grafts(now)
			n.mu.Unlock()
			n.dispatch(outs)
			if tick++; tick%2 == 0 {
				n.flushLazy()
			}
		case <-sync.C:
			n.mu.Lock()
			peer, f, ok := n.core.SyncTarget()
			n.mu.Unlock()
			if ok {
				n.sendTo(peer, f)
			}
			sync.Reset(jitter())
		}
	}
}

// flushLazy wakes the writers of streams holding only lazy frames
// (announcements, prunes), which do not wake them on their own.
func (n *GossipNode) flushLazy() {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	for _, l := range n.links {
		l.q.flushLazy()
	}
	for _, conns := range n.inbound {
		for c := range conns {
			c.q.flushLazy()
		}
	}
}

// waitForRoom blocks a publish while the node is saturated (more than
// MaxQueuedBytes queued for streams, or every neighbour's stream over
// StreamQueueBytes) until there is room or ctx ends.
func (n *GossipNode) waitForRoom(ctx context.Context) error {
	full, room := n.qtotal.saturated()
	if !full {
		return nil
	}
	n.sc.publishWaits.Add(1)
	for full {
		select {
		case <-room:
		case <-ctx.Done():
			n.sc.publishReject.Add(1)
			return fmt.Errorf("%w: %d bytes queued for neighbours' streams (limit %d), or every neighbour's queue over %d bytes: %w",
				ErrSaturated, n.qtotal.load(), n.cfg.MaxQueuedBytes, n.cfg.StreamQueueBytes, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
		full, room = n.qtotal.saturated()
	}
	return nil
}

// linkSet is the node's streams: outbound links by neighbour id, and the
// streams peers opened to it.
type linkSet struct {
	linksMu sync.Mutex
	links   map[string]*link
	inbound map[string]map[*inboundConn]struct{}
}
