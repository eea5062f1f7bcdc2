package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the node's identity, uptime, counters and TTL",
		Long: `Status shows the node's identity and addresses, version, readiness and
uptime, then every counter and gauge the node defines, in three groups:
[core] (messages delivered, duplicates, the seed's unary forwards, the
de-duplication state, the adaptive TTL and its inputs, subscribers),
[stream] (Plumtree pushes, announcements, prunes and grafts, anti-entropy,
repairs, gaps given up and missing numbers, batches, queues, re-sends,
refusals, backpressure and the message store) and [membership] (members
by state, incarnation, local health, reconnection). -o json prints them
as {"counters": {"core": {...}, "stream": {...}, "membership": {...}}}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, "status", pbgrpc.NodeServiceClient.Status, &pb.StatusRequest{},
				func(resp *pb.StatusResponse) any { return toStatusJSON(resp) },
				func(resp *pb.StatusResponse) error { return printStatus(g, resp) })
		},
	}
}

// statusJSON is StatusResponse for scripts: the identity at the top, the
// counters by group and name (numbers, not protojson's strings, so that
// jq can compare them).
type statusJSON struct {
	ID               string                        `json:"id"`
	AdvertiseAddress string                        `json:"advertise_address"`
	ListenAddress    string                        `json:"listen_address"`
	Version          string                        `json:"version"`
	Ready            bool                          `json:"ready"`
	StartedAt        *time.Time                    `json:"started_at"`
	UptimeSeconds    float64                       `json:"uptime_seconds"`
	Counters         map[string]map[string]float64 `json:"counters"`
}

func toStatusJSON(s *pb.StatusResponse) statusJSON {
	out := statusJSON{
		ID: s.GetId(), AdvertiseAddress: s.GetAdvertiseAddress(), ListenAddress: s.GetListenAddress(),
		Version: s.GetVersion(), Ready: s.GetReady(),
		StartedAt: jsonTime(s.GetStartedAt()), UptimeSeconds: seconds(s.GetUptime()),
		Counters: map[string]map[string]float64{},
	}
	for _, c := range s.GetCounters() {
		g := out.Counters[c.GetGroup()]
		if g == nil {
			g = map[string]float64{}
			out.Counters[c.GetGroup()] = g
		}
		g[strings.TrimPrefix(c.GetName(), c.GetGroup()+".")] = c.GetValue()
	}
	return out
}

// printStatus prints the identity, then the counters under a heading per
// group (core, stream, membership), one "name  value" row each, in the
// order the node defines them; "-" is empty.
func printStatus(g *globals, s *pb.StatusResponse) error {
	tw := newTable(g.stdout)
	for _, r := range [][2]string{
		{"id", s.GetId()},
		{"advertise_address", s.GetAdvertiseAddress()},
		{"listen_address", s.GetListenAddress()},
		{"version", s.GetVersion()},
		{"ready", strconv.FormatBool(s.GetReady())},
		{"started_at", timeString(s.GetStartedAt())},
		{"uptime", humanDuration(s.GetUptime())},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], orDash(r[1]))
	}
	group := ""
	for _, c := range s.GetCounters() {
		if c.GetGroup() != group {
			group = c.GetGroup()
			fmt.Fprintf(tw, "\n[%s]\t\n", group)
		}
		fmt.Fprintf(tw, "%s\t%s\n", strings.TrimPrefix(c.GetName(), group+"."), counterValue(c.GetValue()))
	}
	return tw.Flush()
}

// counterValue prints whole numbers without a fraction, seconds with
// millisecond precision.
func counterValue(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}
