package gossip

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpc-gossip/gossip/internal/core"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// Backoff between attempts to (re-)open a neighbour's stream.
const (
	linkBackoffMin = 50 * time.Millisecond
	linkBackoffMax = 5 * time.Second
)

// link is this node's stream to one neighbour: one goroutine that dials,
// writes batches and re-dials with backoff, and one that reads the
// neighbour's answers while a stream is up. Messages sent on a stream stay
// in unacked until the neighbour's cumulative ACK covers them; when the
// stream breaks they are queued again for the next one (the neighbour
// de-duplicates), so a restart of the neighbour loses nothing that was
// in flight. A neighbour that answers Unimplemented is switched to the
// seed's unary RPC for good (fallBack).
type link struct {
	n    *GossipNode
	peer string
	addr string
	q    *sendQueue

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards unacked and sent, shared by the writer and the reader
	unacked []unackedEnv
	sent    uint64 // envelopes sent on the current stream
	up      bool   // the neighbour answered this stream's hello
}

type unackedEnv struct {
	seq    uint64 // number of the envelope on its stream (from 1)
	at     time.Time
	frames []core.Frame // its messages
}

func (l *link) reply(f core.Frame) { l.n.pushFrame(l.peer, l.q, f) }

// startLink starts the stream to neighbour peer at addr. n.linksMu is held.
func (n *GossipNode) startLink(peer, addr string) *link {
	ctx, cancel := context.WithCancel(n.ctx)
	l := &link{n: n, peer: peer, addr: addr, q: newSendQueue(n.qtotal, n.cfg.StreamQueueBytes), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	l.q.register()
	n.links[peer] = l
	n.wg.Add(1)
	go l.run()
	return l
}

// stop ends the link and waits for its goroutines; frames still queued
// are dropped (counted).
func (l *link) stop() {
	l.cancel()
	<-l.done
	l.q.unregister()
	if frames := l.q.drain(); len(frames) > 0 {
		l.n.sc.framesDropped.Add(uint64(len(frames)))
	}
}

func (l *link) run() {
	defer l.n.wg.Done()
	defer close(l.done)
	backoff := linkBackoffMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			l.n.sc.reconnects.Add(1)
		}
		wasUp, err := l.session()
		if l.ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.Unimplemented {
			l.fallBack()
			return
		}
		if wasUp {
			backoff = linkBackoffMin
		}
		l.n.logger.Debug("stream to neighbour ended", "peer", l.peer, "endpoint", l.addr, "err", err, "retry_in", backoff)
		t := time.NewTimer(time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64())))
		select {
		case <-t.C:
		case <-l.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, linkBackoffMax)
	}
}

// session runs one stream until it fails; wasUp says whether the
// neighbour answered its hello.
func (l *link) session() (wasUp bool, err error) {
	ctx, cancel := context.WithCancel(l.ctx)
	defer cancel()
	stream, err := l.n.transport.OpenStream(ctx, l.addr)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	l.sent, l.up = 0, false
	resend := make([]core.Frame, 0)
	for _, u := range l.unacked {
		for _, f := range u.frames {
			f.Repair = true // a re-sent copy is a repair: a duplicate of it must not prune
			resend = append(resend, f)
		}
	}
	l.unacked = nil
	l.mu.Unlock()
	if len(resend) > 0 {
		l.n.sc.resent.Add(uint64(len(resend)))
		l.q.requeue(resend)
	}

	if err := stream.Send(&pb.Envelope{Hello: &pb.Hello{Id: l.n.Hash, Address: l.n.Endpoint}}); err != nil {
		return false, l.streamErr(stream, err)
	}
	// The hello is envelope 1 of the stream: the peer's cumulative ACK
	// counts it.
	l.mu.Lock()
	l.sent = 1
	l.mu.Unlock()
	readErr := make(chan error, 1)
	l.n.wg.Add(1)
	go func() {
		defer l.n.wg.Done()
		readErr <- l.read(stream)
		cancel() // unblock the writer
	}()
	var werr error
	for werr == nil {
		select {
		case <-ctx.Done():
			werr = ctx.Err()
		case <-l.q.wake:
			werr = l.n.writeBatches(stream, l.q, l.sentEnvelope)
		}
	}
	cancel()
	rerr := <-readErr
	l.mu.Lock()
	wasUp = l.up
	l.mu.Unlock()
	if rerr != nil && !errors.Is(rerr, context.Canceled) && status.Code(rerr) != codes.Canceled {
		return wasUp, rerr // the reader saw why the stream ended
	}
	return wasUp, werr
}

// streamErr turns a Send error into the stream's status: Send reports
// io.EOF when the server ended the stream, and Recv then has the reason.
func (l *link) streamErr(stream transport.Stream, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// sentEnvelope records an envelope the writer sent.
func (l *link) sentEnvelope(env *pb.Envelope, batch []core.Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	if len(env.GetMessages())+len(env.GetRepairs()) == 0 {
		return
	}
	var msgs []core.Frame
	for _, f := range batch {
		if f.Kind == core.FrameMessage {
			msgs = append(msgs, f)
		}
	}
	l.unacked = append(l.unacked, unackedEnv{seq: l.sent, at: time.Now(), frames: msgs})
	l.n.mu.Lock()
	l.n.core.Storage().RecordSentN(l.peer, len(msgs))
	l.n.mu.Unlock()
}

// read handles the neighbour's envelopes: its hello, ACKs (which release
// unacked messages and time the round trip), and its answers.
func (l *link) read(stream transport.Stream) error {
	for {
		env, err := stream.Recv()
		if err != nil {
			return err
		}
		l.n.sc.envelopesRecv.Add(1)
		if h := env.GetHello(); h != nil {
			l.mu.Lock()
			l.up = true
			l.mu.Unlock()
			if h.GetId() != l.peer {
				l.n.logger.Warn("neighbour's stream answered with another id", "peer", l.peer, "endpoint", l.addr, "answered", h.GetId())
			}
		}
		if a := env.GetAck(); a > 0 {
			l.acked(a)
		}
		if err := l.n.handleEnvelope(l.peer, env, l); err != nil {
			return err
		}
	}
}

// acked releases the envelopes up to seq and feeds the round trip of the
// newest of them to the neighbour's statistics (for the TTL).
func (l *link) acked(seq uint64) {
	now := time.Now()
	l.mu.Lock()
	i, k := 0, 0
	var at time.Time
	for i < len(l.unacked) && l.unacked[i].seq <= seq {
		at = l.unacked[i].at
		k += len(l.unacked[i].frames)
		i++
	}
	if i > 0 {
		clear(l.unacked[:i])
		l.unacked = l.unacked[i:]
	}
	l.mu.Unlock()
	if !at.IsZero() {
		l.n.sc.copiesAcked.Add(uint64(k))
		l.n.mu.Lock()
		l.n.core.Storage().RecordAckN(now, l.peer, k, now.Sub(at), false)
		l.n.mu.Unlock()
	}
}

// fallBack switches the neighbour to the seed's unary RPC: the core
// chooses it with the Router from now on, and what was queued or in
// flight for it is sent by PutMessageToClient (announcements are replaced
// by the messages they announce).
func (l *link) fallBack() {
	n := l.n
	n.sc.unaryFallbacks.Add(1)
	n.logger.Info("neighbour does not speak Gossip.Stream: using PutMessageToClient", "peer", l.peer, "endpoint", l.addr)
	n.linksMu.Lock()
	if n.links[l.peer] == l {
		delete(n.links, l.peer)
	}
	n.linksMu.Unlock()
	l.q.unregister()
	frames := l.q.drain()
	l.mu.Lock()
	for _, u := range l.unacked {
		frames = append(frames, u.frames...)
	}
	l.unacked = nil
	l.mu.Unlock()
	var msgs []core.Frame
	n.mu.Lock()
	n.core.SetPeerKind(l.peer, core.KindUnary)
	for _, f := range frames {
		switch f.Kind {
		case core.FrameMessage:
			msgs = append(msgs, f)
		case core.FrameIHave:
			msgs = append(msgs, n.core.Lookup(f.Range)...)
		}
	}
	n.mu.Unlock()
	target := []core.Target{{ID: l.peer, Addr: l.addr}}
	for _, f := range msgs {
		m := new(pb.GossipMessage)
		if err := proto.Unmarshal(f.Wire, m); err != nil {
			continue // our own bytes: cannot happen
		}
		n.forward(l.ctx, target, m)
	}
}
