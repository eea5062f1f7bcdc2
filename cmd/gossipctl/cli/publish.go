package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// maxStdinPayload bounds what publish reads from stdin; the node's own
// limit (1 MiB by default) is usually lower and is enforced by the node.
const maxStdinPayload = 16 << 20

func newPublishCmd(g *globals) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "publish [--id ID] PAYLOAD|-",
		Short: "Publish a message (the payload is the argument, or stdin with -)",
		Long: `Publish injects one message at the node, which gossips it to the cluster,
and prints its id. The payload is the argument, or everything on stdin
(at most 16 MiB) when the argument is "-". Without --id the node assigns
a unique id; publishing an id the node has already seen fails
(AlreadyExists).`,
		Example: `  gossipctl publish hello
  date | gossipctl publish --id tick-1 -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			resp, err := unary(cmd.Context(), g, "publish", pbgrpc.NewNodeServiceClient(conn).Publish,
				&pb.PublishRequest{Id: id, Payload: payload})
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
	return cmd
}

// readBounded reads all of r, failing when it holds more than limit bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, failf("publish: reading stdin: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, failf("publish: payload on stdin is larger than %d MiB", limit>>20)
	}
	return b, nil
}
