package cli

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// Payload sizes publish knows about. The node decides what it accepts
// (gossipd's --max-payload); these only shape gossipctl's reading and its
// help, and a test keeps them equal to gossipd's constants.
const (
	// maxStdinPayload bounds what publish reads from stdin: the largest
	// --max-payload gossipd allows (daemon.MaxPayloadLimit), so no
	// payload any gossipd would take is cut off.
	maxStdinPayload = 16 << 20
	// daemonDefaultMaxPayload is gossipd's default --max-payload
	// (daemon.DefaultMaxPayload).
	daemonDefaultMaxPayload = 1 << 20
)

func newPublishCmd(g *globals) *cobra.Command {
	var id string
	var trace, lines bool
	cmd := &cobra.Command{
		Use:   "publish [--id ID] [--trace] PAYLOAD|-  |  publish --lines [--trace] -",
		Short: "Publish a message (the payload is the argument, or stdin with -)",
		Long: fmt.Sprintf(`Publish injects one message at the node, which gossips it to the cluster,
and prints its id. The payload is the argument, or everything on stdin when
the argument is "-". The node refuses a payload larger than its
--max-payload (gossipd's default: %s) and nothing is published;
gossipctl reads at most %s from stdin, the largest --max-payload gossipd
allows. Without --id the node assigns a unique id; publishing an id the
node has already seen fails (AlreadyExists). With --trace every node that
delivers the message reports a receipt to this node: gossipctl trace ID
(against this node) then shows the tree the message took.

With --lines, every non-empty line on stdin (without its newline) is one
message, with an id the node assigns, all published over one stream
(NodeService.PublishStream) as fast as the node acknowledges them; it
prints how many were published and how fast, names failed lines on stderr,
and fails when any line was not published.`, sizeText(daemonDefaultMaxPayload), sizeText(maxStdinPayload)),
		Example: `  gossipctl publish hello
  date | gossipctl publish --id tick-1 -
  seq 100000 | gossipctl publish --lines -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines {
				if args[0] != "-" || id != "" {
					return fmt.Errorf("--lines reads the messages from stdin: give \"-\" as the argument, and no --id (the node assigns each line's)")
				}
				conn, err := g.dial()
				if err != nil {
					return err
				}
				defer conn.Close()
				return g.publishLines(cmd.Context(), pbgrpc.NewNodeServiceClient(conn), g.stdin, trace)
			}
			payload := []byte(args[0])
			if args[0] == "-" {
				var err error
				if payload, err = readBounded(g.stdin, maxStdinPayload); err != nil {
					return err
				}
			}
			conn, err := g.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			client := pbgrpc.NewNodeServiceClient(conn)
			publish := func(ctx context.Context, req *pb.PublishRequest, opts ...grpc.CallOption) (*pb.PublishResponse, error) {
				resp, err := client.Publish(ctx, req, opts...)
				if err != nil {
					if tl := g.tooLarge(len(req.GetPayload()), err); tl != nil {
						return nil, tl
					}
				}
				return resp, err
			}
			resp, err := unary(cmd.Context(), g, "publish", publish, &pb.PublishRequest{Id: id, Payload: payload, Trace: trace})
			if err != nil {
				return err
			}
			if g.json() {
				type ackJSON struct {
					Hash string `json:"hash"`
					From string `json:"from"`
				}
				return output("publish", writeJSON(g.stdout, struct {
					ID  string  `json:"id"`
					Ack ackJSON `json:"ack"`
				}{resp.GetId(), ackJSON{resp.GetAck().GetHash(), resp.GetAck().GetFrom()}}))
			}
			_, err = fmt.Fprintf(g.stdout, "published %s (ack from %s)\n", resp.GetId(), resp.GetAck().GetFrom())
			return output("publish", err)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the message id (default: assigned by the node)")
	cmd.Flags().BoolVar(&trace, "trace", false, "trace the message: see gossipctl trace")
	cmd.Flags().BoolVar(&lines, "lines", false, "publish each line of stdin as one message, over one stream")
	return cmd
}

// readBounded reads all of r, failing when it holds more than limit bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, failf("publish: reading stdin: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, failf("publish: payload on stdin is larger than %s, the most gossipctl reads (and the largest --max-payload gossipd allows); nothing was published", sizeText(int(limit)))
	}
	return b, nil
}

// The two ways a node refuses a payload for its size, both
// ResourceExhausted: its own validation (the payload is over its max
// payload; internal/core's ErrPayloadTooLarge, "payload exceeds the
// maximum size: N bytes, limit M"), and, for a request far over it, gRPC's
// receive limit, which the node sets to its max payload plus room for ids
// and framing (gossip.GossipNode.MaxRecvMsgSize).
var (
	nodeLimitRE = regexp.MustCompile(`payload exceeds the maximum size(?:: \d+ bytes, limit (\d+))?`)
	grpcLimitRE = regexp.MustCompile(`received message larger than max \((\d+) vs\. (\d+)\)`)
)

// tooLarge phrases the node's refusal of a size-byte payload for its size
// as one line in our words, with the limit when the node said it; nil
// when err is anything else (a saturated node is ResourceExhausted too).
func (g *globals) tooLarge(size int, err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return nil
	}
	msg := st.Message()
	if m := nodeLimitRE.FindStringSubmatch(msg); m != nil {
		limit := "its --max-payload"
		if n, err := strconv.Atoi(m[1]); err == nil {
			limit = sizeText(n) + ": its --max-payload"
		}
		return failf("payload is %s, more than node %s accepts (%s); nothing was published", sizeText(size), g.addr, limit)
	}
	if m := grpcLimitRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[2])
		return failf("payload is %s, more than node %s accepts: it takes requests of at most %s, its --max-payload plus room for ids; nothing was published", sizeText(size), g.addr, sizeText(n))
	}
	return nil
}

// sizeText writes n bytes for people: "512 bytes", "64 KiB", "1 MiB", and
// for a size that is not a whole number of its unit, one decimal and the
// exact count, "1.0 MiB (1048577 bytes)" (so that a size just over a limit
// does not read as equal to it).
func sizeText(n int) string {
	unit, name := 0, ""
	switch {
	case n >= 1<<20:
		unit, name = 1<<20, "MiB"
	case n >= 1<<10:
		unit, name = 1<<10, "KiB"
	default:
		return strconv.Itoa(n) + " bytes"
	}
	if n%unit == 0 {
		return fmt.Sprintf("%d %s", n/unit, name)
	}
	return fmt.Sprintf("%s %s (%d bytes)", strconv.FormatFloat(float64(n)/float64(unit), 'f', 1, 64), name, n)
}
