package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// subscribeFlags are subscribe's start position and position file.
type subscribeFlags struct {
	buffer       uint32
	fromOffset   uint64
	since        time.Duration
	fromEarliest bool
	offsetFile   string
}

func newSubscribeCmd(g *globals) *cobra.Command {
	var f subscribeFlags
	cmd := &cobra.Command{
		Use:   "subscribe",
		Short: "Print every message the node delivers, one JSON object per line",
		Long: `Subscribe follows the messages the node delivers and prints each as one
JSON object on a line of its own, whatever -o says:

  {"offset":…,"id":…,"origin":…,"from":…,"payload":…,"hops":…,"received_at":…,"created_at":…}

offset is the message's place in the node's delivery log (1, 2, 3, …:
dense, monotonic, kept across restarts of a node with --data-dir). payload
is the payload when it is valid UTF-8; otherwise payload_base64 holds it
in standard base64. created_at is absent when the origin did not say.
missed, present when not 0, counts the messages this subscriber lost just
before this one because it fell more than --buffer messages behind.

By default it starts with the next message delivered. --from-offset N,
--since DURATION and --from-earliest start in the node's log (what its
--retention keeps): the retained messages are printed first, then the
subscription continues live, with no gap and no duplicate. An offset the
log no longer keeps fails (OutOfRange) naming the earliest available.

--offset-file F keeps the position: after each line printed, F holds its
offset (replaced atomically). Run again with the same F, subscribe starts
right after it, so a subscriber killed at any moment and run again misses
nothing; the line printed last before a kill -9 may be printed again (same
offset: skip offsets you have already processed). Without F, or while F
does not exist yet, the start flags apply.

It runs until interrupted (SIGINT or SIGTERM: exit status 0) or until the
daemon ends the stream, e.g. when it shuts down (exit status 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.subscribe(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.Uint32Var(&f.buffer, "buffer", 0, "messages the node buffers for this subscriber before it misses some (0: the node's default)")
	fl.Uint64Var(&f.fromOffset, "from-offset", 0, "start at this log offset (1 or more)")
	fl.DurationVar(&f.since, "since", 0, "start at the first message the node logged this long ago (e.g. 5m)")
	fl.BoolVar(&f.fromEarliest, "from-earliest", false, "start at the earliest message the node's log retains")
	fl.StringVar(&f.offsetFile, "offset-file", "", "file that keeps the offset of the last message printed, to resume after it when run again")
	cmd.MarkFlagsMutuallyExclusive("from-offset", "since", "from-earliest")
	return cmd
}

// request is the SubscribeRequest for f: from the offset file when it
// exists, else from the start flags.
func (f *subscribeFlags) request() (*pb.SubscribeRequest, error) {
	req := &pb.SubscribeRequest{Buffer: f.buffer}
	if f.offsetFile != "" {
		b, err := os.ReadFile(f.offsetFile)
		switch {
		case err == nil:
			o, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if perr != nil {
				return nil, failf("--offset-file %s: %q is not an offset: fix or remove the file", f.offsetFile, strings.TrimSpace(string(b)))
			}
			req.Start = &pb.SubscribeRequest_FromOffset{FromOffset: o + 1}
			return req, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, failf("--offset-file: %v", err)
		}
	}
	switch {
	case f.fromOffset > 0:
		req.Start = &pb.SubscribeRequest_FromOffset{FromOffset: f.fromOffset}
	case f.since > 0:
		req.Start = &pb.SubscribeRequest_FromTime{FromTime: timestamppb.New(time.Now().Add(-f.since))}
	case f.fromEarliest:
		req.Start = &pb.SubscribeRequest_FromEarliest{FromEarliest: true}
	}
	return req, nil
}

// saveOffset replaces the offset file's content with o, atomically (a
// temporary file renamed over it).
func saveOffset(path string, o uint64) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(o, 10)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// messageJSON is one line of subscribe's output.
type messageJSON struct {
	Offset        uint64     `json:"offset"`
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
		Offset: m.GetOffset(), ID: m.GetId(), Origin: m.GetOrigin(), From: m.GetFrom(), Hops: m.GetHops(),
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

func (g *globals) subscribe(cmd *cobra.Command, f subscribeFlags) error {
	ctx := cmd.Context() // cancelled by SIGINT/SIGTERM
	req, err := f.request()
	if err != nil {
		return err
	}
	conn, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()

	// Bound the connection attempt by --timeout, not the stream: it runs
	// until interrupted. NewStream returns once the request is sent, at
	// once with Unavailable when the connection is refused; the response
	// headers come once the node has registered the subscription (or
	// with its refusal: OutOfRange, …).
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(g.timeout, cancel)
	var p peer.Peer
	stream, err := pbgrpc.NewNodeServiceClient(conn).Subscribe(sctx, req, grpc.Peer(&p))
	if err == nil {
		if md, herr := stream.Header(); herr != nil || md == nil {
			// Ended without headers: Recv says how.
			if _, err = stream.Recv(); err == nil {
				err = status.Error(codes.Internal, "the stream ended without headers")
			}
		}
	}
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
		if f.offsetFile != "" {
			if err := saveOffset(f.offsetFile, m.GetOffset()); err != nil {
				return failf("--offset-file: %v", err)
			}
		}
	}
}
