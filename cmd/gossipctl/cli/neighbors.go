package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func newNeighborsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "neighbors",
		Short: "Show the node's neighbours and their ACK statistics",
		Long: `Neighbors shows the node's neighbours (the peers it forwards to) with its
ACK statistics for each: forward attempts sent, acknowledged and failed,
ACKs saying the neighbour already had the message (DUP), the smoothed
round-trip time and the smoothed loss ratio of attempts.`,
		Aliases: []string{"neighbours"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, "neighbors", pbgrpc.NodeServiceClient.Neighbors, &pb.NeighborsRequest{},
				func(resp *pb.NeighborsResponse) any { return neighborsJSON(resp.GetNeighbors()) },
				func(resp *pb.NeighborsResponse) error { return printNeighbors(g, resp.GetNeighbors()) })
		},
	}
}

type neighborJSON struct {
	ID                 string     `json:"id"`
	Address            string     `json:"address"`
	Sent               uint64     `json:"sent"`
	Acked              uint64     `json:"acked"`
	Failed             uint64     `json:"failed"`
	Duplicates         uint64     `json:"duplicates"`
	LastRTTSeconds     float64    `json:"last_rtt_seconds"`
	SmoothedRTTSeconds float64    `json:"smoothed_rtt_seconds"`
	Loss               float64    `json:"loss"`
	LastAck            *time.Time `json:"last_ack"`
	LastFailure        *time.Time `json:"last_failure"`
	Transport          string     `json:"transport"`
	LazySources        uint32     `json:"lazy_sources"`
}

func neighborsJSON(ns []*pb.Neighbor) []neighborJSON {
	out := make([]neighborJSON, 0, len(ns))
	for _, n := range ns {
		out = append(out, neighborJSON{
			ID: n.GetId(), Address: n.GetAddress(),
			Sent: n.GetSent(), Acked: n.GetAcked(), Failed: n.GetFailed(), Duplicates: n.GetDuplicates(),
			LastRTTSeconds: seconds(n.GetLastRtt()), SmoothedRTTSeconds: seconds(n.GetSmoothedRtt()),
			Loss: n.GetLoss(), LastAck: jsonTime(n.GetLastAck()), LastFailure: jsonTime(n.GetLastFailure()),
			Transport: n.GetTransport(), LazySources: n.GetLazySources(),
		})
	}
	return out
}

func printNeighbors(g *globals, ns []*pb.Neighbor) error {
	tw := newTable(g.stdout)
	fmt.Fprintln(tw, "ID\tADDRESS\tSENT\tACKED\tFAILED\tDUP\tSRTT\tLOSS\tTRANSPORT")
	for _, n := range ns {
		srtt := "-" // no ACK yet
		if d := n.GetSmoothedRtt().AsDuration(); d > 0 {
			srtt = roundDuration(d).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%.1f%%\t%s\n", n.GetId(), orDash(n.GetAddress()),
			n.GetSent(), n.GetAcked(), n.GetFailed(), n.GetDuplicates(), srtt, 100*n.GetLoss(), orDash(n.GetTransport()))
	}
	return tw.Flush()
}
