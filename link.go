package gossip

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
// neighbour's answers while a stream is up. Its conn keeps the messages
// of every envelope until the neighbour's cumulative ACK covers them;
// when the stream breaks they are queued again for the next one (the
// neighbour de-duplicates), so a restart of the neighbour loses nothing
// that was in flight. A neighbour that answers Unimplemented is switched
// to the seed's unary RPC for good (fallBack).
type link struct {
	n    *GossipNode
	peer string
	addr string
	c    *conn
	// chosen is set when membership chose the neighbour: the hello asks
	// it to make the link two-way.
	chosen bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// startLink starts the stream to neighbour peer at addr. n.linksMu is held.
func (n *GossipNode) startLink(peer, addr string, chosen bool) *link {
	ctx, cancel := context.WithCancel(n.ctx)
	l := &link{n: n, peer: peer, addr: addr, c: newConn(peer, n.qtotal, n.cfg.StreamQueueBytes, true),
		chosen: chosen, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	l.c.register()
	n.links[peer] = l
	n.wg.Add(1)
	go l.run()
	return l
}

// stop ends the link and waits for its goroutines; frames still queued
// or unacknowledged are dropped (counted: repair covers them).
func (l *link) stop() {
	l.cancel()
	<-l.done
	l.c.unregister()
	if frames := l.c.drain(); len(frames) > 0 {
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
		if status.Code(err) == codes.ResourceExhausted {
			// The peer refused an envelope as too large (a peer that
			// did not say its limit in its hello): the largest message in
			// flight is refused for it, so that the next stream does not
			// break on it again.
			var f core.Frame
			var ok bool
			l.c.do(func(s *core.Stream) { f, ok = s.RefuseLargestUnacked() })
			if ok {
				l.n.refuse(l.peer, []core.Frame{f})
			}
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
	if si, ok := stream.(interface{ ServerNode() (string, bool) }); ok && l.n.sec != nil {
		// Mutual TLS: send nothing to a server that is not the neighbour.
		if id, ok := si.ServerNode(); ok && id != l.peer {
			l.n.logger.Warn("neighbour's address is served by another node; not streaming to it", "peer", l.peer, "endpoint", l.addr, "certificate", id)
			return false, status.Errorf(codes.PermissionDenied, "stream to %s %s: the server's certificate is for node %q", l.peer, l.addr, id)
		}
	}
	hello := l.hello()
	if err := stream.Send(hello); err != nil {
		return false, l.streamErr(stream, err)
	}
	up := make(chan struct{})
	readErr := make(chan error, 1)
	l.n.wg.Add(1)
	go func() {
		defer l.n.wg.Done()
		readErr <- l.read(stream, up)
		cancel() // unblock the writer
	}()
	var werr error
	for werr == nil {
		select {
		case <-ctx.Done():
			werr = ctx.Err()
		case <-l.c.wake:
			werr = l.n.write(stream, l.c)
		}
	}
	cancel()
	rerr := <-readErr
	select {
	case <-up:
		wasUp = true
		l.n.mu.Lock()
		l.n.core.PeerUp(time.Now(), l.peer, false)
		l.n.mu.Unlock()
	default:
	}
	if rerr != nil && !errors.Is(rerr, context.Canceled) && status.Code(rerr) != codes.Canceled {
		return wasUp, rerr // the reader saw why the stream ended
	}
	return wasUp, werr
}

// hello starts a new stream: what the last one did not get acknowledged
// goes first (as repairs, so that duplicates among them do not prune),
// then the hello, which is envelope 1 of the stream (the peer's
// cumulative ACK counts it).
func (l *link) hello() *pb.Envelope {
	var resent int
	var env *pb.Envelope
	l.c.do(func(s *core.Stream) {
		resent = s.Restart()
		env = s.Hello(l.n.Hash, l.n.Endpoint, l.n.MaxRecvMsgSize(), l.chosen)
	})
	if resent > 0 {
		l.n.sc.resent.Add(uint64(resent))
		l.c.signal()
	}
	return env
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

// read handles the neighbour's envelopes: its hello (then up is closed),
// ACKs, and its answers.
func (l *link) read(stream transport.Stream, up chan struct{}) error {
	for {
		env, err := stream.Recv()
		if err != nil {
			return err
		}
		ev, err := l.n.handleEnvelope(l.c, env)
		if err != nil {
			return err
		}
		if h := ev.Hello; h != nil {
			if h.GetId() != l.peer && l.n.sec != nil {
				// With mutual TLS the answer is the server's certificate's
				// id (certBoundStream): not the neighbour meant.
				l.n.logger.Warn("neighbour's stream answered with another id", "peer", l.peer, "endpoint", l.addr, "answered", h.GetId())
				return status.Errorf(codes.PermissionDenied, "stream to %s %s: the server is node %q", l.peer, l.addr, h.GetId())
			}
			select {
			case <-up:
			default:
				close(up)
				l.n.mu.Lock()
				l.n.core.PeerUp(time.Now(), l.peer, true)
				d := l.n.core.ConnectDigest()
				l.n.mu.Unlock()
				l.n.push(l.c, d)
			}
			if h.GetId() != l.peer {
				l.n.logger.Warn("neighbour's stream answered with another id", "peer", l.peer, "endpoint", l.addr, "answered", h.GetId())
			}
			l.n.applyPeerLimit(l.c)
		}
	}
}

// applyPeerLimit refuses, for good, the queued messages larger than the
// peer said it accepts (its hello).
func (n *GossipNode) applyPeerLimit(c *conn) {
	var refused []core.Frame
	c.do(func(s *core.Stream) { refused = s.RefuseOversized() })
	if len(refused) > 0 {
		n.refuse(c.peer, refused)
	}
}

// fallBack switches the neighbour to the seed's unary RPC: the core
// chooses it with the Router from now on, and what was queued or in
// flight for it is sent by PutMessageToClient.
func (l *link) fallBack() {
	n := l.n
	n.sc.unaryFallbacks.Add(1)
	n.logger.Info("neighbour does not speak Gossip.Stream: using PutMessageToClient", "peer", l.peer, "endpoint", l.addr)
	// The core stops choosing stream frames for the peer before its link
	// goes: a frame chosen before finds the link (and is drained below) or
	// finds it gone or drained and, the peer being unary by then, is sent
	// by orphanFrames. Switched after, a frame chosen in between found no
	// link while the peer was still a stream peer and was dropped (a
	// message lost for that peer: gossipd's TestShutdownTimeout timed out
	// on it now and then).
	n.mu.Lock()
	n.core.SetPeerKind(l.peer, core.KindUnary)
	n.mu.Unlock()
	n.linksMu.Lock()
	if n.links[l.peer] == l {
		delete(n.links, l.peer)
	}
	n.linksMu.Unlock()
	l.c.unregister()
	frames := l.c.drain()
	n.mu.Lock()
	msgs := n.core.UnaryFallback(l.peer, frames)
	n.mu.Unlock()
	target := []core.Target{{ID: l.peer, Addr: l.addr}}
	for _, m := range msgs {
		n.forward(l.ctx, target, m)
	}
}
