package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func newSubscribeCmd(g *globals) *cobra.Command {
	var buffer uint32
	cmd := &cobra.Command{
		Use:   "subscribe",
		Short: "Print every message the node delivers, one JSON object per line",
		Long: `Subscribe follows the messages the node delivers from now on and prints
each as one JSON object on a line of its own, whatever -o says:

  {"id":…,"origin":…,"from":…,"payload":…,"hops":…,"received_at":…,"created_at":…}

payload is the payload when it is valid UTF-8; otherwise payload_base64
holds it in standard base64. created_at is absent when the origin did not
say. missed, present when not 0, counts the messages this subscriber lost
just before this one because it fell more than --buffer messages behind.

It runs until interrupted (SIGINT or SIGTERM: exit status 0) or until the
daemon ends the stream, e.g. when it shuts down (exit status 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.subscribe(cmd, buffer)
		},
	}
	cmd.Flags().Uint32Var(&buffer, "buffer", 0, "messages the node buffers for this subscriber before it misses some (0: the node's default)")
	return cmd
}

// messageJSON is one line of subscribe's output.
type messageJSON struct {
	ID            string     `json:"id"`
	Origin        string     `json:"origin"`
	From          string     `json:"from"`
	Payload       *string    `json:"payload,omitempty"`
	PayloadBase64 string     `json:"payload_base64,omitempty"`
	Hops          uint32     `json:"hops"`
	ReceivedAt    *time.Time `json:"received_at,omitempty"`
	CreatedAt     *time.Time `json:"created_at,omitempty"`
	Missed        uint64     `json:"missed,omitempty"`
}

func toMessageJSON(m *pb.SubscribeResponse) messageJSON {
	j := messageJSON{
		ID: m.GetId(), Origin: m.GetOrigin(), From: m.GetFrom(), Hops: m.GetHops(),
		ReceivedAt: jsonTime(m.GetReceivedAt()), CreatedAt: jsonTime(m.GetCreatedAt()),
		Missed: m.GetMissed(),
	}
	if p := m.GetPayload(); utf8.Valid(p) {
		s := string(p)
		j.Payload = &s
	} else {
		j.PayloadBase64 = base64.StdEncoding.EncodeToString(p)
	}
	return j
}

func (g *globals) subscribe(cmd *cobra.Command, buffer uint32) error {
	ctx := cmd.Context() // cancelled by SIGINT/SIGTERM
	conn, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()

	// Bound the connection attempt by --timeout, not the stream: it runs
	// until interrupted. NewStream returns once the request is sent, at
	// once with Unavailable when the connection is refused.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(g.timeout, cancel)
	var p peer.Peer
	stream, err := pbgrpc.NewNodeServiceClient(conn).Subscribe(sctx, &pb.SubscribeRequest{Buffer: buffer}, grpc.Peer(&p))
	if !timer.Stop() && ctx.Err() == nil {
		return failf("cannot reach gossipd at %s: no answer within %v", g.addr, g.timeout)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted before the stream started
		}
		return g.rpcFailure(ctx, "subscribe", err, p.Addr != nil)
	}

	w := bufio.NewWriter(g.stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		m, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end
			}
			if errors.Is(err, io.EOF) {
				return failf("subscribe: gossipd at %s ended the subscription", g.addr)
			}
			st := status.Convert(err)
			if st.Code() == codes.Unavailable {
				return failf("subscribe: gossipd at %s ended the subscription: %s", g.addr, st.Message())
			}
			return g.rpcFailure(ctx, "subscribe", err, true)
		}
		if err := enc.Encode(toMessageJSON(m)); err != nil {
			return output("subscribe", err)
		}
		if err := w.Flush(); err != nil {
			return output("subscribe", err)
		}
	}
}
