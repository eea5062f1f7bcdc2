package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WatchKind is the kind of a WatchEvent.
type WatchKind int

// What a Watcher reports.
const (
	WatchMember          WatchKind = iota + 1 // a membership change (WatchEvent.Member)
	WatchNeighborAdded                        // a neighbour was added or re-addressed (Peer, Address)
	WatchNeighborRemoved                      // a neighbour was removed (Peer)
	WatchWarning                              // the node logged a warning or an error (Message)
)

func (k WatchKind) String() string {
	switch k {
	case WatchMember:
		return "member"
	case WatchNeighborAdded:
		return "neighbor-added"
	case WatchNeighborRemoved:
		return "neighbor-removed"
	case WatchWarning:
		return "warning"
	}
	return "unknown"
}

// WatchEvent is one thing that happened on a node, for people watching it
// (gossipctl watch, the dashboard): a membership change, a neighbour
// change, or a warning the node logged.
type WatchEvent struct {
	Kind    WatchKind
	At      time.Time
	Member  MemberEvent // WatchMember
	Peer    string      // neighbour events: its id
	Address string      // WatchNeighborAdded: its address
	// Message is, for WatchWarning, the log line: its level, message and
	// attributes as key=value ("WARN rejected message hash=… err=…").
	Message string
	// Missed is the number of events this watcher missed (its buffer was
	// full) just before this one.
	Missed uint64
}

// DefaultWatchBuffer is the buffer of a Watcher created with 0.
const DefaultWatchBuffer = 256

// Watcher receives the node's WatchEvents from Watch on, in the order they
// happened. Like a Subscription it never slows the node down: when its
// buffer is full it misses events, and the next one it gets says how many
// (WatchEvent.Missed). It is safe for concurrent use.
type Watcher struct {
	n       *GossipNode
	ch      chan WatchEvent
	pending uint64 // missed since the last event; guarded by n.watchMu
}

// Watch starts a Watcher with a buffer of the given number of events (0:
// DefaultWatchBuffer; at most MaxSubscriptionBuffer). Close it when done;
// it is closed for you when the node closes.
func (n *GossipNode) Watch(buffer int) (*Watcher, error) {
	switch {
	case buffer == 0:
		buffer = DefaultWatchBuffer
	case buffer < 0 || buffer > MaxSubscriptionBuffer:
		return nil, &rpcError{err: errSubscriptionBuffer}
	}
	w := &Watcher{n: n, ch: make(chan WatchEvent, buffer)}
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	if n.watchClosed {
		return nil, asRPCError(ErrClosed)
	}
	if n.watchers == nil {
		n.watchers = make(map[*Watcher]struct{})
	}
	n.watchers[w] = struct{}{}
	n.watching.Store(int32(len(n.watchers)))
	return w, nil
}

// C is the channel of events; it is closed by Close and when the node
// closes.
func (w *Watcher) C() <-chan WatchEvent { return w.ch }

// Close ends the watcher and closes C. It is idempotent.
func (w *Watcher) Close() {
	n := w.n
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	if _, ok := n.watchers[w]; ok {
		delete(n.watchers, w)
		close(w.ch)
		n.watching.Store(int32(len(n.watchers)))
	}
}

// emitWatch hands e to every watcher without blocking. Cheap when nobody
// watches (one atomic load).
func (n *GossipNode) emitWatch(e WatchEvent) {
	if n.watching.Load() == 0 {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	for w := range n.watchers {
		e.Missed = w.pending
		select {
		case w.ch <- e:
			w.pending = 0
		default:
			w.pending++
		}
	}
}

// closeWatchers closes every watcher; later Watch calls fail.
func (n *GossipNode) closeWatchers() {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	for w := range n.watchers {
		close(w.ch)
	}
	n.watchers, n.watchClosed = nil, true
	n.watching.Store(0)
}

// watchState is the part of GossipNode that serves watchers.
type watchState struct {
	watchMu     sync.Mutex
	watchers    map[*Watcher]struct{}
	watchClosed bool
	watching    atomic.Int32 // len(watchers), read without the lock
}

// watchHandler passes every record to the node's own handler and, while
// someone watches, turns warnings and errors into WatchWarning events. It
// keeps the attributes and groups added with With so the event shows them.
type watchHandler struct {
	inner  slog.Handler
	n      *GossipNode
	prefix string // "key=value " of the attributes added with With (node excluded)
	group  string // the current group, "a.b."
}

func (h *watchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l) || l >= slog.LevelWarn && h.n.watching.Load() > 0
}

func (h *watchHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && h.n.watching.Load() > 0 {
		var b strings.Builder
		b.WriteString(r.Level.String())
		b.WriteByte(' ')
		b.WriteString(r.Message)
		if h.prefix != "" {
			b.WriteByte(' ')
			b.WriteString(strings.TrimSuffix(h.prefix, " "))
		}
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s%s=%v", h.group, a.Key, a.Value)
			return true
		})
		h.n.emitWatch(WatchEvent{Kind: WatchWarning, At: r.Time, Message: b.String()})
	}
	if h.inner.Enabled(ctx, r.Level) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h *watchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(as)
	for _, a := range as {
		if a.Key == "node" && h.group == "" {
			continue // this node: the watcher knows it
		}
		c.prefix += fmt.Sprintf("%s%s=%v ", h.group, a.Key, a.Value)
	}
	return &c
}

func (h *watchHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.group += name + "."
	return &c
}
