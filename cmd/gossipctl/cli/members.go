package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func newMembersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the members the node knows, itself included",
		Long: `Members lists the cluster members the node knows, itself included (SELF),
with their state (alive, suspect, dead, left), incarnation and how long
ago the node last heard from them directly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, "members", pbgrpc.NodeServiceClient.Members, &pb.MembersRequest{},
				func(resp *pb.MembersResponse) any { return membersJSON(resp.GetMembers()) },
				func(resp *pb.MembersResponse) error { return printMembers(g, resp.GetMembers(), time.Now()) })
		},
	}
}

type memberJSON struct {
	ID          string     `json:"id"`
	Address     string     `json:"address"`
	State       string     `json:"state"`
	Incarnation uint64     `json:"incarnation"`
	LastHeard   *time.Time `json:"last_heard"`
	Self        bool       `json:"self"`
}

func membersJSON(ms []*pb.Member) []memberJSON {
	out := make([]memberJSON, 0, len(ms)) // [] rather than null when empty
	for _, m := range ms {
		out = append(out, memberJSON{
			ID: m.GetId(), Address: m.GetAddress(), State: memberState(m.GetState()),
			Incarnation: m.GetIncarnation(), LastHeard: jsonTime(m.GetLastHeard()), Self: m.GetSelf(),
		})
	}
	return out
}

func printMembers(g *globals, ms []*pb.Member, now time.Time) error {
	tw := newTable(g.stdout)
	fmt.Fprintln(tw, "ID\tADDRESS\tSTATE\tINCARNATION\tLAST-HEARD\tSELF")
	for _, m := range ms {
		self := "-"
		if m.GetSelf() {
			self = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", m.GetId(), orDash(m.GetAddress()), memberState(m.GetState()),
			m.GetIncarnation(), age(now, m.GetLastHeard()), self)
	}
	return tw.Flush()
}

// memberState is "alive", "suspect", "dead", "left" or "unspecified"
// (or the number of a state newer than this client).
func memberState(s pb.MemberState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "MEMBER_STATE_"))
}
