package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func newTraceCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "trace ID",
		Short: "Show the tree a traced message took, and when each node got it",
		Long: `Trace asks the node that published a traced message (gossipctl publish
--trace, or gossipd --trace-sample) for the receipts the other nodes sent
it, and prints the tree the message took: each node under the neighbour
its first copy came from, with the time since publish, the hops, and
"repair" when it came by GRAFT or anti-entropy instead of the tree. The
first line sums it up:

  trace 3f2a…: 19/19 members in 3.1 ms, 4 hops max, 0 repairs

(members: the members the origin counts alive now). -o json prints the
receipts. Point --addr at the message's origin.`,
		Example: `  id=$(gossipctl publish --trace -o json hello | jq -r .id); gossipctl trace "$id"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd, g, "trace", pbgrpc.NodeServiceClient.Trace, &pb.TraceRequest{Id: args[0]},
				traceJSON, func(t *pb.TraceResponse) error { return printTrace(g.stdout, t) })
		},
	}
}

type receiptJSON struct {
	Node     string  `json:"node"`
	From     string  `json:"from,omitempty"`
	Hops     uint32  `json:"hops"`
	AfterMs  float64 `json:"after_ms"` // since publish (the origin's clock against the node's)
	Repaired bool    `json:"repaired,omitempty"`
}

func traceJSON(t *pb.TraceResponse) any {
	rs := make([]receiptJSON, 0, len(t.GetReceipts()))
	for _, r := range t.GetReceipts() {
		rs = append(rs, receiptJSON{Node: r.GetNode(), From: r.GetFrom(), Hops: r.GetHops(), AfterMs: afterMs(t, r), Repaired: r.GetRepaired()})
	}
	return struct {
		ID          string        `json:"id"`
		Origin      string        `json:"origin"`
		PublishedAt *time.Time    `json:"published_at,omitempty"`
		LiveMembers uint32        `json:"live_members"`
		Dropped     uint64        `json:"dropped,omitempty"`
		Receipts    []receiptJSON `json:"receipts"`
	}{t.GetId(), t.GetOrigin(), jsonTime(t.GetPublishedAt()), t.GetLiveMembers(), t.GetDropped(), rs}
}

func afterMs(t *pb.TraceResponse, r *pb.Receipt) float64 {
	if t.GetPublishedAt() == nil || r.GetDeliveredAt() == nil {
		return 0
	}
	return float64(r.GetDeliveredAt().AsTime().Sub(t.GetPublishedAt().AsTime())) / float64(time.Millisecond)
}

func fmtMs(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// printTrace prints the summary line and the tree.
func printTrace(w io.Writer, t *pb.TraceResponse) error {
	rs := t.GetReceipts()
	children := map[string][]*pb.Receipt{}
	have := map[string]bool{}
	var last float64
	var maxHops uint32
	repairs := 0
	for _, r := range rs {
		have[r.GetNode()] = true
		last = max(last, afterMs(t, r))
		maxHops = max(maxHops, r.GetHops())
		if r.GetRepaired() {
			repairs++
		}
	}
	var roots []*pb.Receipt
	for _, r := range rs {
		if r.GetNode() == t.GetOrigin() || !have[r.GetFrom()] {
			roots = append(roots, r) // the origin, or a node whose parent's receipt is missing
		} else {
			children[r.GetFrom()] = append(children[r.GetFrom()], r)
		}
	}
	id := t.GetId()
	if len(id) > 12 {
		id = id[:12] + "…"
	}
	fmt.Fprintf(w, "trace %s: %d/%d members in %s, %d hops max, %d repairs", id, len(rs), t.GetLiveMembers(), fmtMs(last), maxHops, repairs)
	if d := t.GetDropped(); d > 0 {
		fmt.Fprintf(w, " (%d receipts dropped)", d)
	}
	fmt.Fprintln(w)
	byTime := func(a, b *pb.Receipt) int {
		if c := cmp.Compare(afterMs(t, a), afterMs(t, b)); c != 0 {
			return c
		}
		return strings.Compare(a.GetNode(), b.GetNode())
	}
	var walk func(r *pb.Receipt, prefix string, lastChild, top bool)
	walk = func(r *pb.Receipt, prefix string, lastChild, top bool) {
		branch, next := "├─ ", prefix+"│  "
		if lastChild {
			branch, next = "└─ ", prefix+"   "
		}
		if top {
			branch, next = "", ""
		}
		line := fmt.Sprintf("%s%s%s  %s  hop %d", prefix, branch, r.GetNode(), fmtMs(afterMs(t, r)), r.GetHops())
		switch {
		case r.GetNode() == t.GetOrigin():
			line = fmt.Sprintf("%s%s%s  origin", prefix, branch, r.GetNode())
		case top:
			line += fmt.Sprintf("  (from %s: no receipt)", r.GetFrom())
		}
		if r.GetRepaired() {
			line += "  repair"
		}
		fmt.Fprintln(w, line)
		kids := children[r.GetNode()]
		slices.SortFunc(kids, byTime)
		for i, k := range kids {
			walk(k, next, i == len(kids)-1, false)
		}
	}
	for _, r := range roots {
		walk(r, "", true, true)
	}
	return nil
}
