package gossip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// MemberState is a member's state as this node sees it.
type MemberState int

// Member states. Until failure detection exists, neighbours are Alive, or
// Suspect while their last forward failed.
const (
	MemberAlive MemberState = iota + 1
	MemberSuspect
	MemberDead
	MemberLeft
)

func (s MemberState) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberSuspect:
		return "suspect"
	case MemberDead:
		return "dead"
	case MemberLeft:
		return "left"
	}
	return "unknown"
}

// Member is one member of the cluster as this node knows it.
type Member struct {
	ID          string
	Address     string
	State       MemberState
	Incarnation uint64
	LastHeard   time.Time // last ACK from it; zero when never
	Self        bool
}

// DefaultJoinPeers is how many members a joining node links to: the seed
// that answered and up to DefaultJoinPeers-1 others from its member list.
const DefaultJoinPeers = 4

// Members returns this node (Self) and its neighbours, sorted by id after
// the node itself.
func (n *GossipNode) Members() []Member {
	out := []Member{{ID: n.Hash, Address: n.Endpoint, State: MemberAlive, Self: true}}
	stats := n.NeighborStats()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ns := range stats {
		st := MemberAlive
		if n.peerDown[ns.ID] {
			st = MemberSuspect
		}
		out = append(out, Member{ID: ns.ID, Address: ns.Endpoint, State: st, LastHeard: ns.LastAck})
	}
	return out
}

// MarkReady marks the node ready without joining (the first node of a
// cluster). Ready is reported by Stats and by the daemon's health checks.
func (n *GossipNode) MarkReady() { n.ready.Store(true) }

// Ready reports whether the node has joined a cluster or was marked ready.
func (n *GossipNode) Ready() bool { return n.ready.Load() }

// Join links this node into a cluster through the first seed (a gRPC
// address) that answers: the seed takes this node as a neighbour and this
// node takes the seed, then up to DefaultJoinPeers-1 other members from
// the seed's list, chosen at random, the same way (symmetric links). Links
// to those others are best effort. It returns the number of links made, or
// ErrNotJoined (with each seed's error) when no seed answered; the caller
// decides whether to retry. Seeds equal to the node's own Endpoint are
// skipped. Join needs the gRPC transport (the node's client factory).
func (n *GossipNode) Join(ctx context.Context, seeds []string) (int, error) {
	if n.factory == nil {
		return 0, errors.New("gossip: Join needs the gRPC transport")
	}
	if n.Endpoint == "" {
		return 0, errors.New("gossip: Join needs the node's Endpoint (its advertised address)")
	}
	var errs []error
	for _, seed := range seeds {
		if seed == n.Endpoint {
			continue
		}
		members, err := n.joinOne(ctx, seed)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", seed, err))
			continue
		}
		linked := 1
		var others []*pb.Member
		for _, m := range members {
			if !m.GetSelf() && m.GetId() != n.Hash && m.GetAddress() != "" {
				others = append(others, m)
			}
		}
		rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
		for _, m := range others {
			if linked == DefaultJoinPeers {
				break
			}
			if _, err := n.joinOne(ctx, m.GetAddress()); err != nil {
				n.logger.Info("join: member did not answer", "peer", m.GetId(), "endpoint", m.GetAddress(), "err", err)
				continue
			}
			linked++
		}
		n.ready.Store(true)
		n.logger.Info("joined", "seed", seed, "links", linked)
		return linked, nil
	}
	return 0, fmt.Errorf("%w: %w", ErrNotJoined, errors.Join(errs...))
}

// joinOne asks the node at addr to link with this one, links back, and
// returns the members it knows.
func (n *GossipNode) joinOne(ctx context.Context, addr string) ([]*pb.Member, error) {
	cc, err := n.factory.Conn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AckTimeout)
	defer cancel()
	resp, err := pb.NewMembershipServiceClient(cc).Join(ctx, &pb.JoinRequest{Member: &pb.Member{Id: n.Hash, Address: n.Endpoint}})
	if err != nil {
		return nil, err
	}
	for _, m := range resp.GetMembers() {
		if m.GetSelf() {
			if m.GetId() == n.Hash {
				return nil, fmt.Errorf("the node at %s has this node's id %q", addr, n.Hash)
			}
			if err := n.AddNeighbor(m.GetId(), addr); err != nil {
				return nil, err
			}
			return resp.GetMembers(), nil
		}
	}
	return nil, fmt.Errorf("the node at %s did not say who it is", addr)
}

// membershipService serves MembershipService for a node.
type membershipService struct {
	pb.UnimplementedMembershipServiceServer
	n *GossipNode
}

// Join takes the caller as a neighbour and returns the members this node
// knows.
func (s membershipService) Join(_ context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	m := req.GetMember()
	if m.GetId() == "" || m.GetAddress() == "" {
		return nil, asRPCError(fmt.Errorf("join: %w", ErrEmptyNeighbor))
	}
	if err := s.n.AddNeighbor(m.GetId(), m.GetAddress()); err != nil {
		return nil, asRPCError(err)
	}
	s.n.logger.Info("member joined", "peer", m.GetId(), "endpoint", m.GetAddress())
	return &pb.JoinResponse{Members: membersToProto(s.n.Members())}, nil
}

func membersToProto(ms []Member) []*pb.Member {
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = &pb.Member{
			Id: m.ID, Address: m.Address, State: pb.MemberState(m.State), Incarnation: m.Incarnation,
			LastHeard: timestamp(m.LastHeard), Self: m.Self,
		}
	}
	return out
}
