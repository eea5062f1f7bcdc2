package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func newWatchCmd(g *globals) *cobra.Command {
	var buffer uint32
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Follow membership changes, neighbour changes and warnings live",
		Long: `Watch prints what happens on the node from now on, one event per line:

  membership   joined, updated (new incarnation or address), suspect,
               refuted (alive again), dead, left, reaped
  neighbours   neighbor-added, neighbor-removed
  warnings     warning: every warning or error the node logs

As text (the default):

  2026-12-02T01:50:07.123Z  dead              node-3  127.0.0.1:9005  incarnation 0
  2026-12-02T01:50:07.124Z  neighbor-removed  node-3

or, with -o json, one JSON object per line:

  {"at":…,"kind":"dead","member":{"id":…,"address":…,"state":"dead","incarnation":0}}
  {"at":…,"kind":"neighbor-added","peer":…,"address":…}
  {"at":…,"kind":"warning","message":"WARN …"}

missed, when not 0, counts the events this watcher lost just before this
one because it fell more than --buffer events behind (text: a line of its
own).

It runs until interrupted (SIGINT or SIGTERM: exit status 0) or until the
daemon ends the stream, e.g. when it shuts down (exit status 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.watch(cmd, buffer)
		},
	}
	cmd.Flags().Uint32Var(&buffer, "buffer", 0, "events the node buffers for this watcher before it misses some (0: the node's default)")
	return cmd
}

// watchKind is a WatchEventKind as watch prints it.
func watchKind(k pb.WatchEventKind) string {
	s := strings.TrimPrefix(k.String(), "WATCH_EVENT_KIND_")
	s = strings.TrimPrefix(s, "MEMBER_")
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// watchJSON is one line of watch -o json.
type watchJSON struct {
	At      *time.Time   `json:"at,omitempty"`
	Kind    string       `json:"kind"`
	Member  *memberBrief `json:"member,omitempty"`
	Peer    string       `json:"peer,omitempty"`
	Address string       `json:"address,omitempty"`
	Message string       `json:"message,omitempty"`
	Missed  uint64       `json:"missed,omitempty"`
}

type memberBrief struct {
	ID          string `json:"id"`
	Address     string `json:"address"`
	State       string `json:"state"`
	Incarnation uint64 `json:"incarnation"`
}

func toWatchJSON(e *pb.WatchEvent) watchJSON {
	j := watchJSON{At: jsonTime(e.GetAt()), Kind: watchKind(e.GetKind()), Peer: e.GetPeer(), Address: e.GetAddress(),
		Message: e.GetMessage(), Missed: e.GetMissed()}
	if m := e.GetMember(); m != nil {
		j.Member = &memberBrief{ID: m.GetId(), Address: m.GetAddress(), State: memberState(m.GetState()), Incarnation: m.GetIncarnation()}
	}
	return j
}

// watchText is one event as a line of text (without the newline).
func watchText(e *pb.WatchEvent) string {
	at := "-"
	if ts := e.GetAt(); ts != nil {
		at = ts.AsTime().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	line := fmt.Sprintf("%s  %-16s", at, watchKind(e.GetKind()))
	switch m := e.GetMember(); {
	case m != nil:
		line += fmt.Sprintf("  %s  %s  incarnation %d", m.GetId(), m.GetAddress(), m.GetIncarnation())
	case e.GetKind() == pb.WatchEventKind_WATCH_EVENT_KIND_WARNING:
		line += "  " + oneLine(e.GetMessage())
	default:
		line += "  " + e.GetPeer()
		if a := e.GetAddress(); a != "" {
			line += "  " + a
		}
	}
	return strings.TrimRight(line, " ")
}

func (g *globals) watch(cmd *cobra.Command, buffer uint32) error {
	ctx := cmd.Context() // cancelled by SIGINT/SIGTERM
	conn, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()

	// As subscribe: --timeout bounds connecting, not the stream.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(g.timeout, cancel)
	var p peer.Peer
	stream, err := pbgrpc.NewNodeServiceClient(conn).Watch(sctx, &pb.WatchRequest{Buffer: buffer}, grpc.Peer(&p))
	if !timer.Stop() && ctx.Err() == nil {
		return failf("cannot reach gossipd at %s: no answer within %v", g.addr, g.timeout)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return g.rpcFailure(ctx, "watch", err, p.Addr != nil)
	}

	w := bufio.NewWriter(g.stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		e, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end
			}
			if errors.Is(err, io.EOF) {
				return failf("watch: gossipd at %s ended the stream", g.addr)
			}
			if st := status.Convert(err); st.Code() == codes.Unavailable {
				return failf("watch: gossipd at %s ended the stream: %s", g.addr, st.Message())
			}
			return g.rpcFailure(ctx, "watch", err, true)
		}
		if g.json() {
			err = enc.Encode(toWatchJSON(e))
		} else {
			if n := e.GetMissed(); n > 0 {
				fmt.Fprintf(w, "(missed %d events: this watcher fell behind)\n", n)
			}
			_, err = fmt.Fprintln(w, watchText(e))
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return output("watch", err)
		}
	}
}
