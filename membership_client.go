package gossip

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpc-gossip/gossip/internal/swim"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// The client side: carrying the core's messages as MembershipService RPCs.

// rpc carries one message of the core and steps the core with the answer.
// Errors are returned for logging only: SWIM treats a failed RPC as a
// lost message and decides by its own timeouts.
func (m *membership) rpc(msg swim.Message) error {
	cli, err := m.n.transport.Membership(msg.ToAddr)
	if err != nil {
		return err
	}
	// A probe's answer is useless after its probe interval (msg.Timeout);
	// other messages get the longest interval LHM allows.
	timeout := m.cfg.ProbeInterval * time.Duration(m.cfg.AwarenessMax)
	switch {
	case msg.Kind == swim.KindPingReq:
		timeout = msg.Timeout + m.cfg.ProbeTimeout // the relay's own wait, and the way back
	case msg.Timeout > 0:
		timeout = msg.Timeout
	}
	ctx, cancel := context.WithTimeout(m.n.ctx, timeout)
	defer cancel()
	switch msg.Kind {
	case swim.KindPing:
		start := time.Now()
		resp, err := cli.Ping(ctx, &pb.PingRequest{Seq: msg.Seq, From: msg.From, FromAddress: msg.FromAddr, Target: msg.Target, Updates: updatesToProto(msg.Updates)})
		if err != nil {
			return err
		}
		if msg.To != "" && resp.GetFrom() != msg.To {
			// Only the member probed acks its probe (its answer is bound
			// to its certificate with TLS: grpcMembership): one that
			// answers as another is not taken for it.
			return fmt.Errorf("ping to %s at %s answered by %q", msg.To, msg.ToAddr, resp.GetFrom())
		}
		m.probed(msg.To, time.Since(start))
		m.step(swim.Message{Kind: swim.KindAck, From: resp.GetFrom(), Seq: resp.GetSeq(), Updates: updatesFromProto(resp.GetUpdates())})
	case swim.KindPingReq:
		resp, err := cli.PingReq(ctx, &pb.PingReqRequest{Seq: msg.Seq, From: msg.From, FromAddress: msg.FromAddr, Target: msg.Target,
			TargetAddress: msg.TargetAddr, Timeout: durationpb.New(msg.Timeout), Updates: updatesToProto(msg.Updates)})
		if err != nil {
			return err // no nack either: Lifeguard counts that against this node's health
		}
		if msg.To != "" && resp.GetFrom() != msg.To {
			return fmt.Errorf("ping-req to %s at %s answered by %q", msg.To, msg.ToAddr, resp.GetFrom())
		}
		kind := swim.KindNack
		if resp.GetAcked() {
			kind = swim.KindAck
		}
		m.step(swim.Message{Kind: kind, From: resp.GetFrom(), Seq: msg.Seq, Updates: updatesFromProto(resp.GetUpdates())})
	case swim.KindGossip:
		_, err := cli.PushUpdates(ctx, &pb.PushUpdatesRequest{From: msg.From, FromAddress: msg.FromAddr, Updates: updatesToProto(msg.Updates)})
		return err
	case swim.KindSync:
		resp, err := cli.Sync(ctx, &pb.SyncRequest{From: msg.From, FromAddress: msg.FromAddr, Members: updatesToProto(msg.Updates)})
		if err != nil {
			return err
		}
		m.step(swim.Message{Kind: swim.KindSyncReply, From: resp.GetFrom(), FromAddr: resp.GetFromAddress(), Updates: updatesFromProto(resp.GetMembers())})
	default:
		return fmt.Errorf("membership: cannot send a %v", msg.Kind)
	}
	return nil
}

// join asks the seed at addr to add this node and adopts its members.
func (m *membership) join(ctx context.Context, addr string) error {
	cli, err := m.n.transport.Membership(addr)
	if err != nil {
		return err
	}
	m.mu.Lock()
	req := m.core.Join(addr)
	m.mu.Unlock()
	self := req.Updates[0]
	ctx, cancel := context.WithTimeout(ctx, m.n.cfg.AckTimeout)
	defer cancel()
	resp, err := cli.Join(ctx, &pb.JoinRequest{Member: &pb.Member{
		Id: self.ID, Address: self.Addr, State: pb.MemberState(self.State), Incarnation: self.Incarnation, MaxPayloadBytes: self.MaxPayload}})
	if err != nil {
		return err
	}
	var seedID string
	ups := make([]swim.Update, 0, len(resp.GetMembers()))
	for _, pm := range resp.GetMembers() {
		if pm.GetSelf() {
			seedID = pm.GetId()
		}
		if len(pm.GetId()) > maxMemberField || len(pm.GetAddress()) > maxMemberField {
			continue
		}
		ups = append(ups, swim.Update{ID: pm.GetId(), Addr: pm.GetAddress(), State: swim.State(pm.GetState()), Incarnation: pm.GetIncarnation(), MaxPayload: pm.GetMaxPayloadBytes()})
	}
	switch seedID {
	case "":
		return fmt.Errorf("the node at %s did not say who it is", addr)
	case m.n.Hash:
		return fmt.Errorf("the node at %s has this node's id %q", addr, m.n.Hash)
	}
	m.step(swim.Message{Kind: swim.KindSyncReply, From: seedID, FromAddr: addr, Updates: ups})
	m.rebalance(true) // neighbours in place, both ways, when Join returns
	return nil
}

// link tells a member it was chosen (or dropped) as a neighbour, in the
// background; done counts the call.
func (m *membership) link(done *sync.WaitGroup, id, addr string, unlink bool) {
	done.Add(1)
	if !m.spawn(func() { defer done.Done(); m.linkRPC(id, addr, unlink) }) {
		done.Done()
	}
}

func (m *membership) linkRPC(id, addr string, unlink bool) {
	cli, err := m.n.transport.Membership(addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(m.n.ctx, m.n.cfg.AckTimeout)
	defer cancel()
	if _, err := cli.Link(ctx, &pb.LinkRequest{From: m.n.Hash, FromAddress: m.n.Endpoint, Unlink: unlink}); err != nil {
		m.n.logger.Debug("membership: link failed", "peer", id, "unlink", unlink, "err", err)
	}
}

func membersToProto(ms []Member) []*pb.Member {
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = &pb.Member{
			Id: m.ID, Address: m.Address, State: pb.MemberState(m.State), Incarnation: m.Incarnation,
			LastHeard: timestamp(m.LastHeard), Self: m.Self, MaxPayloadBytes: uint64(max(m.MaxPayloadBytes, 0)),
		}
	}
	return out
}

func updatesToProto(us []swim.Update) []*pb.MemberUpdate {
	if len(us) == 0 {
		return nil
	}
	out := make([]*pb.MemberUpdate, len(us))
	for i, u := range us {
		out[i] = &pb.MemberUpdate{Id: u.ID, Address: u.Addr, State: pb.MemberState(u.State), Incarnation: u.Incarnation, From: u.From, MaxPayloadBytes: u.MaxPayload}
	}
	return out
}

// maxMemberField bounds a member id or address from the network, as
// Config.MaxHashBytes' default bounds message ids; longer ones are dropped.
const maxMemberField = 256

func updatesFromProto(us []*pb.MemberUpdate) []swim.Update {
	if len(us) == 0 {
		return nil
	}
	out := make([]swim.Update, 0, len(us))
	for _, u := range us {
		if len(u.GetId()) > maxMemberField || len(u.GetAddress()) > maxMemberField || len(u.GetFrom()) > maxMemberField {
			continue
		}
		out = append(out, swim.Update{ID: u.GetId(), Addr: u.GetAddress(), State: swim.State(u.GetState()), Incarnation: u.GetIncarnation(), From: u.GetFrom(), MaxPayload: u.GetMaxPayloadBytes()})
	}
	return out
}
