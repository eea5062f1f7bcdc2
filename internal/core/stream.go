package core

import (
	"math"
	"slices"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Stream is the protocol state of one Gossip.Stream at one end: the frames
// waiting to be sent and how they become Envelopes, the cumulative ACK
// owed to the other end, and the envelopes sent but not yet acknowledged
// (both ends acknowledge what they receive, so that each learns what the
// other holds; the end that opened the stream also re-sends them on the
// next stream when this one breaks).
// The runtime owns one per stream, serialises calls to it (it is not safe
// for concurrent use), moves the envelopes Next returns and feeds Received
// and Acked with what arrives. It is independent of Node so that the
// runtime can lock it apart from the node.
//
// Batching: Next takes everything queued up to a byte bound, so there is
// no linger timer — a frame queued while the writer is idle goes out at
// once, and frames coalesce only while the writer is busy sending.
// Announcements, prunes and ACKs are lazy: they wait for the next
// envelope or for a flush (Flush), so that a lightly loaded stream does
// not spend an envelope per announcement.
//
// Bytes are counted as frameBytes estimates: a message's wire size plus a
// little, a fixed size for the small frames.
type Stream struct {
	soft   int  // past it, eager messages become announcements; past 4×, frames are dropped
	opener bool // this end opened the stream: it re-sends what was not acknowledged

	frames []Frame
	head   int
	bytes  int
	lazy   bool // lazy frames or an ACK queued without a wake-up

	recvd  uint64 // envelopes received on the current stream
	ackDue uint64 // cumulative ACK owed; sent when > acked
	acked  uint64 // the last ACK sent

	sent    uint64 // envelopes sent on the current stream (the hello is 1)
	unacked []unackedEnv

	// peerMax is the largest envelope the peer accepts, from its hello (0:
	// unknown). Messages that cannot fit are refused for this peer.
	peerMax int
}

type unackedEnv struct {
	seq    uint64 // the envelope's number on its stream
	at     time.Time
	frames []Frame // its messages
}

// NewStream returns the state of a new stream with the given soft bound
// (Config.StreamQueueBytes in the runtime); opener is true on the end that
// opened the stream, which re-sends what was not acknowledged when a
// stream breaks and it opens the next one (Restart).
func NewStream(soft int, opener bool) *Stream {
	return &Stream{soft: soft, opener: opener}
}

// PushResult says what became of a pushed frame.
type PushResult int

const (
	Pushed   PushResult = iota
	Deferred            // an eager message queued as an announcement: the queue is over its soft bound
	Merged              // an announcement merged into the one queued last
	Dropped             // over the hard bound (4× soft): left to repair
	Refused             // a message larger than the peer accepts: it never gets it from this node
)

// frameBytes is the queue's size estimate of f.
func frameBytes(f *Frame) int {
	switch f.Kind {
	case FrameMessage:
		return len(f.Wire) + 8
	case FrameDigest:
		return 64 * len(f.Digest.GetSequences())
	}
	return 48
}

// envelopeOverhead bounds what an Envelope adds around its frames besides
// their per-frame framing (which frameBytes over-counts): the ack, the
// field tags of one frame.
const envelopeOverhead = 64

// Push queues f. An eager message past the soft bound becomes an
// announcement (the peer pulls it at its own pace); anything past four
// times the bound is dropped; a message the peer cannot take (its hello
// said so) is refused. Repairs are never degraded: the peer asked for
// them. An announcement that extends the one queued last is merged into
// it. wake reports whether the writer should be woken now (false for lazy
// frames, which wait for the next envelope or a Flush, unless Urgent).
func (s *Stream) Push(f Frame) (res PushResult, wake bool) {
	if f.Kind == FrameMessage && s.peerMax > 0 && len(f.Wire)+envelopeOverhead > s.peerMax {
		return Refused, false
	}
	if s.bytes >= s.soft && f.Kind == FrameMessage && !f.Repair && f.Range != nil {
		f = Frame{Kind: FrameIHave, Range: f.Range}
		res = Deferred
	}
	if f.Kind == FrameIHave {
		if q := s.queuedIHave(f.Range); q != nil && extends(q.Range, f.Range) {
			if !q.Owned { // copy on write: the range may be shared
				q.Range, q.Owned = copyRange(q.Range), true
			}
			q.Range.Last, q.Range.Hops = f.Range.GetLast(), f.Range.GetHops()
			s.lazy = true
			if res == Pushed {
				res = Merged
			}
			return res, f.Urgent
		}
	}
	b := frameBytes(&f)
	if s.bytes+b > 4*s.soft && s.bytes > 0 {
		return Dropped, false
	}
	if f.Kind == FrameIHave {
		// Shared with the other peers' frames until a merge extends it
		// (queuedIHave, copy on write): most announcements are never
		// merged, and copying each cost an allocation per lazy link and
		// message.
		f.Owned = false
	}
	s.frames = append(s.frames, f)
	s.bytes += b
	if f.Kind == FrameIHave {
		s.lazy = true
		return res, f.Urgent
	}
	return res, true
}

// mergeScan bounds how many queued frames Push looks back over for an
// announcement of the same sequence to extend (a constant cost per push).
const mergeScan = 16

// queuedIHave returns the latest queued announcement of r's sequence
// among the last mergeScan queued frames, or nil. Announcements of one
// source arrive in order, interleaved with other sources' messages and
// announcements: merging only into the last frame left one range per
// message on a busy link.
func (s *Stream) queuedIHave(r *pb.SeqRange) *Frame {
	for i := len(s.frames) - 1; i >= s.head && i >= len(s.frames)-mergeScan; i-- {
		if q := &s.frames[i]; q.Kind == FrameIHave && q.Range.GetNode() == r.GetNode() && q.Range.GetEpoch() == r.GetEpoch() {
			return q
		}
	}
	return nil
}

func copyRange(r *pb.SeqRange) *pb.SeqRange {
	return &pb.SeqRange{Node: r.GetNode(), Epoch: r.GetEpoch(), First: r.GetFirst(), Last: r.GetLast(), Hops: r.GetHops()}
}

// Withdraw turns the queued eager copies of source src's messages into
// announcements: the peer PRUNEd src, so it has them already (or will get
// them from its parent). Under load a queue holds dozens of messages by
// the time the PRUNE arrives, all of them duplicates at the peer. Repairs
// stay (the peer asked for them). It returns how many were withdrawn.
func (s *Stream) Withdraw(src string) int {
	k := 0
	for i := s.head; i < len(s.frames); i++ {
		f := &s.frames[i]
		if f.Kind != FrameMessage || f.Repair || f.Range.GetNode() != src {
			continue
		}
		s.bytes -= frameBytes(f) - 48
		*f = Frame{Kind: FrameIHave, Range: f.Range} // shared: copied on a merge
		k++
	}
	if k > 0 {
		s.lazy = true
	}
	return k
}

// Flush reports whether the writer should be woken for lazy frames or an
// ACK that are waiting (the runtime calls it every GraftTimeout/2).
func (s *Stream) Flush() bool {
	return s.lazy && (s.head < len(s.frames) || s.ackDue > s.acked)
}

// Bytes is the size of what is queued.
func (s *Stream) Bytes() int { return s.bytes }

// Over reports whether the queue is at or past its soft bound.
func (s *Stream) Over() bool { return s.bytes >= s.soft }

// Len is the number of frames queued.
func (s *Stream) Len() int { return len(s.frames) - s.head }

// Hello is the first envelope of a stream, from this end; its sender
// opens with it, the other end answers with its own. It counts as
// envelope 1 of the stream (the other end's cumulative ACK counts it).
// maxRecv is the largest envelope this node accepts; link is set when
// the sender chose the receiver as a neighbour (membership: the link is
// two-way, and the receiver makes it so when it did not know).
func (s *Stream) Hello(self, addr string, maxRecv int, link bool) *pb.Envelope {
	s.sent = 1
	return &pb.Envelope{Hello: &pb.Hello{Id: self, Address: addr, MaxEnvelopeBytes: uint64(maxRecv), Link: link}}
}

// Next takes frames up to maxBytes (at least one), up to the peer's limit,
// and returns them as one Envelope with the ACK owed (if new) and the
// congestion this node knows of (busyUntil, when after now): messages
// and repairs as their shared serialized bytes, consecutive announcements
// of one sequence merged into one range, prune sources de-duplicated, the
// latest digest. The envelope's messages are kept until Acked. ok is false when there is nothing to send; more is true
// when frames are left (the writer loops).
func (s *Stream) Next(now time.Time, maxBytes int, busyUntil time.Time) (env *pb.Envelope, more, ok bool) {
	if s.peerMax > 0 {
		maxBytes = min(maxBytes, s.peerMax-envelopeOverhead)
	}
	n, size := 0, 0
	for s.head+n < len(s.frames) {
		b := frameBytes(&s.frames[s.head+n])
		if n > 0 && size+b > maxBytes {
			break
		}
		size += b
		n++
	}
	var batch []Frame
	if n > 0 {
		batch = s.frames[s.head : s.head+n]
		env = envelope(batch)
		s.bytes -= size
	}
	if s.ackDue > s.acked {
		if env == nil {
			env = &pb.Envelope{}
		}
		env.Ack, s.acked = s.ackDue, s.ackDue
	}
	if env == nil {
		s.lazy = false
		return nil, false, false
	}
	if d := busyUntil.Sub(now); d > 0 {
		env.BusyMs = uint32(min(d.Milliseconds()+1, math.MaxUint32))
	}
	s.sent++
	var msgs []Frame
	for _, f := range batch {
		if f.Kind == FrameMessage {
			msgs = append(msgs, f)
		}
	}
	if len(msgs) > 0 {
		s.unacked = append(s.unacked, unackedEnv{seq: s.sent, at: now, frames: msgs})
	}
	if n > 0 {
		clear(s.frames[s.head : s.head+n])
		s.head += n
		if s.head == len(s.frames) {
			s.frames, s.head = s.frames[:0], 0
		} else if s.head > 4096 && s.head*2 > len(s.frames) {
			s.frames = append(s.frames[:0:0], s.frames[s.head:]...)
			s.head = 0
		}
	}
	more = s.head < len(s.frames)
	if !more {
		s.lazy = false
	}
	return env, more, true
}

// envelope turns a batch into one Envelope. Ranges in frames may be
// shared and are never modified: the envelope refers to them, and copies
// one only to grow it by a merge (owned records which it copied).
func envelope(batch []Frame) *pb.Envelope {
	env := &pb.Envelope{}
	var msgs, repairs, ihaves, grafts int // one allocation per list, not a growing slice
	for i := range batch {
		switch f := &batch[i]; {
		case f.Kind == FrameMessage && f.Repair:
			repairs++
		case f.Kind == FrameMessage:
			msgs++
		case f.Kind == FrameIHave:
			ihaves++
		case f.Kind == FrameGraft:
			grafts++
		}
	}
	if msgs > 0 {
		env.Messages = make([][]byte, 0, msgs)
	}
	if repairs > 0 {
		env.Repairs = make([][]byte, 0, repairs)
	}
	if ihaves > 0 {
		env.Ihave = make([]*pb.SeqRange, 0, ihaves)
	}
	if grafts > 0 {
		env.Graft = make([]*pb.SeqRange, 0, grafts)
	}
	var owned []*pb.SeqRange // the ranges this envelope copied (few: one per merged run)
	for i := range batch {
		f := &batch[i]
		switch f.Kind {
		case FrameMessage:
			if f.Repair {
				env.Repairs = append(env.Repairs, f.Wire)
			} else {
				env.Messages = append(env.Messages, f.Wire)
			}
		case FrameIHave:
			env.Ihave = appendRange(env.Ihave, f.Range, &owned)
		case FrameGraft:
			env.Graft = appendRange(env.Graft, f.Range, &owned)
		case FramePrune:
			if src := f.Range.GetNode(); !slices.Contains(env.Prune, src) {
				env.Prune = append(env.Prune, src)
			}
		case FrameDigest:
			env.Digest = f.Digest
		}
	}
	return env
}

// appendRange appends r, or merges it into the latest range of its
// sequence among the last mergeScan when it extends that one. A range
// not in *owned is shared and is copied before it grows.
func appendRange(rs []*pb.SeqRange, r *pb.SeqRange, owned *[]*pb.SeqRange) []*pb.SeqRange {
	for i := len(rs) - 1; i >= 0 && i >= len(rs)-mergeScan; i-- {
		q := rs[i]
		if q.GetNode() != r.GetNode() || q.GetEpoch() != r.GetEpoch() {
			continue
		}
		if !extends(q, r) {
			break
		}
		if !slices.Contains(*owned, q) {
			q = copyRange(q)
			rs[i] = q
			*owned = append(*owned, q)
		}
		q.Last, q.Hops = r.GetLast(), r.GetHops()
		return rs
	}
	return append(rs, r)
}

// extends reports whether r continues last: same sequence, starting right
// after it.
func extends(last, r *pb.SeqRange) bool {
	return last.GetNode() == r.GetNode() && last.GetEpoch() == r.GetEpoch() && last.GetLast()+1 == r.GetFirst()
}

// Received counts an envelope that arrived on the stream; one that carried
// messages makes the cumulative ACK due (it rides with the next
// envelope back, or goes at the next Flush: a stream carrying one message
// at a time then does not cost an ACK envelope per message; round trips
// measured from ACKs include that wait).
func (s *Stream) Received(env *pb.Envelope) {
	s.recvd++
	if len(env.GetMessages()) > 0 || len(env.GetRepairs()) > 0 {
		s.ackDue = s.recvd
		s.lazy = true
	}
}

// Acked releases the sent envelopes up to seq (the peer's cumulative ACK)
// and returns their messages and the round trip of the newest of them
// (zero when none was released).
func (s *Stream) Acked(now time.Time, seq uint64) (released []Frame, rtt time.Duration) {
	i := 0
	var at time.Time
	for i < len(s.unacked) && s.unacked[i].seq <= seq {
		at = s.unacked[i].at
		released = append(released, s.unacked[i].frames...)
		i++
	}
	if i == 0 {
		return nil, 0
	}
	clear(s.unacked[:i])
	s.unacked = s.unacked[i:]
	return released, now.Sub(at)
}

// Restart prepares the state for a new stream to the same peer: the
// messages sent but not acknowledged go back to the front of the queue
// as repairs (the peer de-duplicates; a repair's duplicate does not
// prune), the envelope numbering and the ACKs start again. It returns how
// many messages are re-sent.
func (s *Stream) Restart() int {
	var resend []Frame
	for _, u := range s.unacked {
		for _, f := range u.frames {
			f.Repair = true
			resend = append(resend, f)
		}
	}
	s.unacked = nil
	s.sent, s.recvd, s.ackDue, s.acked = 0, 0, 0, 0
	if len(resend) > 0 {
		size := 0
		for i := range resend {
			size += frameBytes(&resend[i])
		}
		s.frames = append(resend, s.frames[s.head:]...)
		s.head = 0
		s.bytes += size
	}
	return len(resend)
}

// RefuseOversized removes the queued messages larger than the peer
// accepts (its hello) and returns them: the peer never gets them from
// this node.
func (s *Stream) RefuseOversized() (refused []Frame) {
	if s.peerMax <= 0 {
		return nil
	}
	keep := s.frames[:s.head]
	for _, f := range s.frames[s.head:] {
		if f.Kind == FrameMessage && len(f.Wire)+envelopeOverhead > s.peerMax {
			s.bytes -= frameBytes(&f)
			refused = append(refused, f)
			continue
		}
		keep = append(keep, f)
	}
	clear(s.frames[len(keep):])
	s.frames = keep
	return refused
}

// RefuseLargestUnacked removes the largest message of the envelopes sent
// and not acknowledged, and returns it: the peer broke the stream over an
// envelope too large for it (it did not announce its limit), and must not
// get the same envelope again.
func (s *Stream) RefuseLargestUnacked() (Frame, bool) {
	bi, bj, size := -1, -1, -1
	for i, u := range s.unacked {
		for j, f := range u.frames {
			if len(f.Wire) > size {
				bi, bj, size = i, j, len(f.Wire)
			}
		}
	}
	if bi < 0 {
		return Frame{}, false
	}
	f := s.unacked[bi].frames[bj]
	s.unacked[bi].frames = slices.Delete(s.unacked[bi].frames, bj, bj+1)
	return f, true
}

// Drain empties the queue and the unacknowledged envelopes, and returns
// what they held (the stream is gone for good).
func (s *Stream) Drain() []Frame {
	out := slices.Clone(s.frames[s.head:])
	for _, u := range s.unacked {
		out = append(out, u.frames...)
	}
	s.frames, s.head, s.bytes, s.unacked = nil, 0, 0, nil
	return out
}
