package memnet

import (
	"context"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gossipv1 "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// pipe is one open stream between the Endpoint that opened it (from) and
// the handler at to: two directions of envelopes, each ordered, delayed
// and flow-controlled. It breaks as a whole (fail): both ends see the same
// error at once, and what was in flight is discarded, as a reset
// connection does.
type pipe struct {
	net      *Network
	ep       *Endpoint // the opening side's endpoint
	from, to string
	window   int
	limit    int // the server's receive limit (0: none); the client's is unlimited

	mu     sync.Mutex
	dirs   [2]direction // 0: from → to (client to server), 1: to → from
	err    error        // why the stream broke; nil while it works
	broken chan struct{}

	sctx    context.Context // the server's stream context
	scancel context.CancelFunc
}

// direction is the envelopes in flight one way.
type direction struct {
	q     []flight
	last  time.Time // arrival time of the newest envelope queued
	bytes int       // bytes in flight (flow control)
	// end is set when the sending side ended cleanly (the server's
	// ServeStream returned): the receiver gets it after the queue drains.
	end   error
	data  chan struct{} // signalled when an envelope is queued or end is set
	space chan struct{} // signalled when an envelope is taken
}

type flight struct {
	env  *gossipv1.Envelope
	at   time.Time
	size int
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// OpenStream opens Gossip.Stream to the handler registered at to; see the
// package comment. It fails with codes.Unavailable when the endpoint is
// closed, no node is at to (at once), or a partition separates the two
// (after the connect timeout), and with ctx's status when ctx ends first.
// The handler's ServeStream runs on its own goroutine until it returns.
func (e *Endpoint) OpenStream(ctx context.Context, to string) (transport.Stream, error) {
	n, c := e.net, &e.net.stats
	select {
	case <-e.done:
		c.openRefused.Add(1)
		return nil, e.errClosed()
	default:
	}
	if err := ctx.Err(); err != nil {
		c.openRefused.Add(1)
		return nil, ctxStatus(err, e.from, to, "opening a stream")
	}
	n.mu.Lock()
	h, reachable, connect := n.handlers[to], n.reachable(e.from, to), n.connect
	n.mu.Unlock()
	if h == nil {
		c.openRefused.Add(1)
		return nil, status.Errorf(codes.Unavailable, "memnet: %s -> %s: connection refused: no node at %q", e.from, to, to)
	}
	if !reachable {
		c.openRefused.Add(1)
		t := time.NewTimer(connect)
		defer t.Stop()
		select {
		case <-t.C:
			return nil, status.Errorf(codes.Unavailable, "memnet: %s -> %s: connect timeout: partitioned", e.from, to)
		case <-ctx.Done():
			return nil, ctxStatus(ctx.Err(), e.from, to, "opening a stream across a partition")
		case <-e.done:
			return nil, e.errClosed()
		}
	}
	p := &pipe{net: n, ep: e, from: e.from, to: to, broken: make(chan struct{})}
	for i := range p.dirs {
		p.dirs[i].data, p.dirs[i].space = make(chan struct{}, 1), make(chan struct{}, 1)
	}
	if l, ok := h.(transport.Limits); ok {
		p.limit = l.MaxRecvMsgSize()
	}
	p.sctx, p.scancel = context.WithCancel(context.Background())
	n.mu.Lock()
	p.window = n.window
	// Registered under the lock Partition and Crash take, so a stream
	// opened concurrently with them is either seen and broken, or opened
	// after them (and then checked below).
	n.streams[p] = struct{}{}
	stillOK := n.reachable(e.from, to) && n.handlers[to] != nil
	n.mu.Unlock()
	if !stillOK {
		p.fail(status.Errorf(codes.Unavailable, "memnet: %s -> %s: connection lost while opening", e.from, to))
	}
	c.opened.Add(1)
	stop := context.AfterFunc(ctx, func() {
		p.fail(ctxStatus(ctx.Err(), e.from, to, "stream"))
	})
	server := &end{p: p, send: 1, recv: 0}
	go func() {
		err := h.ServeStream(p.sctx, server)
		if err == nil {
			err = io.EOF
		}
		p.serverDone(err)
		stop()
	}()
	return &end{p: p, send: 0, recv: 1}, nil
}

// fail breaks the stream with err (the first error wins): both ends' Send
// and Recv return it from now on, what was in flight is discarded, and
// the server's context is cancelled.
func (p *pipe) fail(err error) {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return
	}
	p.err = err
	for i := range p.dirs {
		p.dirs[i].q, p.dirs[i].bytes = nil, 0
	}
	close(p.broken)
	p.mu.Unlock()
	p.scancel()
	n := p.net
	n.stats.broken.Add(1)
	n.mu.Lock()
	delete(n.streams, p)
	n.mu.Unlock()
}

// serverDone records that the handler returned err (io.EOF for a clean
// end): the client reads what the server sent, then err; its Sends fail
// with io.EOF, as gRPC's do once the server has finished.
func (p *pipe) serverDone(err error) {
	p.mu.Lock()
	if p.err == nil {
		d := &p.dirs[1]
		d.end = err
		signal(d.data)
		// What the client sent and the server did not read is discarded;
		// a Recv of the server's still running returns, and the client's
		// Sends fail.
		p.dirs[0].q, p.dirs[0].bytes, p.dirs[0].end = nil, 0, io.EOF
		signal(p.dirs[0].space)
		signal(p.dirs[0].data)
	}
	p.mu.Unlock()
	p.scancel()
	n := p.net
	n.mu.Lock()
	delete(n.streams, p)
	n.mu.Unlock()
}

// end is one side of a pipe: a transport.Stream.
type end struct {
	p          *pipe
	send, recv int // indexes into p.dirs
}

// Send queues env for the other side: it arrives after the one-way delay,
// never before the envelope sent before it. It blocks while the window
// is full, fails with the stream's error once broken (a lost envelope
// breaks it), and with codes.ResourceExhausted when env is over the
// receiver's limit (which breaks the stream too, as gRPC does).
func (s *end) Send(env *gossipv1.Envelope) error {
	p, n := s.p, s.p.net
	size := proto.Size(env)
	limit := 0
	if s.send == 0 {
		limit = p.limit
	}
	if limit > 0 && size > limit {
		p.fail(status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", size, limit))
		return p.errNow()
	}
	clone := proto.Clone(env).(*gossipv1.Envelope)
	p.mu.Lock()
	d := &p.dirs[s.send]
	for {
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			return err
		}
		if d.end != nil {
			p.mu.Unlock()
			return io.EOF // the receiver has finished
		}
		if d.bytes == 0 || d.bytes+size <= p.window {
			break
		}
		p.mu.Unlock()
		select {
		case <-d.space:
		case <-p.broken:
		}
		p.mu.Lock()
	}
	n.mu.Lock()
	from, to := p.from, p.to
	if s.send == 1 {
		from, to = to, from
	}
	lost := n.rng.Float64() < n.lossOf(from, to)
	at := time.Now().Add(n.delay())
	n.mu.Unlock()
	n.stats.streamBytes.Add(uint64(size))
	if lost {
		p.mu.Unlock()
		n.stats.envLost.Add(1)
		p.fail(status.Errorf(codes.Unavailable, "memnet: %s -> %s: connection reset: an envelope was lost", from, to))
		return p.errNow()
	}
	if at.Before(d.last) {
		at = d.last // in order on one stream
	}
	d.last = at
	d.q = append(d.q, flight{env: clone, at: at, size: size})
	d.bytes += size
	signal(d.data)
	p.mu.Unlock()
	return nil
}

func (p *pipe) errNow() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Recv returns the next envelope once its delay has passed, the stream's
// error once it is broken, or the server's end (io.EOF or its status)
// after everything it sent.
func (s *end) Recv() (*gossipv1.Envelope, error) {
	p := s.p
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			return nil, err
		}
		d := &p.dirs[s.recv]
		var wait <-chan time.Time
		if len(d.q) > 0 {
			f := d.q[0]
			if delay := time.Until(f.at); delay <= 0 {
				d.q[0] = flight{}
				d.q = d.q[1:]
				d.bytes -= f.size
				signal(d.space) // room for a blocked sender
				p.mu.Unlock()
				p.net.stats.envelopes.Add(1)
				return f.env, nil
			} else {
				if timer == nil {
					timer = time.NewTimer(delay)
				} else {
					timer.Reset(delay)
				}
				wait = timer.C
			}
		} else if d.end != nil {
			err := d.end
			p.mu.Unlock()
			return nil, err
		}
		p.mu.Unlock()
		select {
		case <-wait:
		case <-d.data:
		case <-p.broken:
		}
	}
}
