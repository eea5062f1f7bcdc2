package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the node's identity, uptime, counters and TTL",
		Long: `Status shows the node's identity and addresses, version, readiness and
uptime; its message counters (delivered, forwarded, duplicates; forward
attempts sent, acked, failed, retried, given up, dropped; requests
rejected as invalid or malformed); its de-duplication state (messages
active, ids seen) and the adaptive TTL with its inputs (diameter, hop
latency); its neighbours, members and subscribers; and the streaming
transport's counters (stream.*: Plumtree pushes, announcements, prunes and
grafts, anti-entropy, batches, queues, re-sends and backpressure).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, "status", pbgrpc.NodeServiceClient.Status, &pb.StatusRequest{},
				func(resp *pb.StatusResponse) any { return toStatusJSON(resp) },
				func(resp *pb.StatusResponse) error { return printStatus(g, resp) })
		},
	}
}

// statusJSON is StatusResponse for scripts: protojson would print the
// uint64 counters as strings, which jq cannot compare.
type statusJSON struct {
	ID                string     `json:"id"`
	AdvertiseAddress  string     `json:"advertise_address"`
	ListenAddress     string     `json:"listen_address"`
	Version           string     `json:"version"`
	Ready             bool       `json:"ready"`
	StartedAt         *time.Time `json:"started_at"`
	UptimeSeconds     float64    `json:"uptime_seconds"`
	Delivered         uint64     `json:"delivered"`
	Forwarded         uint64     `json:"forwarded"`
	Duplicates        uint64     `json:"duplicates"`
	Sent              uint64     `json:"sent"`
	Acked             uint64     `json:"acked"`
	AckFailed         uint64     `json:"ack_failed"`
	Retries           uint64     `json:"retries"`
	GaveUp            uint64     `json:"gave_up"`
	SendsDropped      uint64     `json:"sends_dropped"`
	Invalid           uint64     `json:"invalid"`
	Malformed         uint64     `json:"malformed"`
	Active            uint64     `json:"active"`
	Seen              uint64     `json:"seen"`
	TTLSeconds        float64    `json:"ttl_seconds"`
	Diameter          uint32     `json:"diameter"`
	HopLatencySeconds float64    `json:"hop_latency_seconds"`
	Neighbors         uint32     `json:"neighbors"`
	Members           uint32     `json:"members"`
	Subscribers       uint32     `json:"subscribers"`
	SubscriberMissed  uint64     `json:"subscriber_missed"`
	// Stream holds the streaming transport's counters, by their proto
	// names (all numbers).
	Stream map[string]uint64 `json:"stream"`
}

// streamCounters lists StreamStatus's fields in proto order, by name.
func streamCounters(s *pb.StreamStatus) (names []string, values map[string]uint64) {
	values = make(map[string]uint64)
	m := s.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		v := m.Get(f)
		var u uint64
		switch f.Kind() {
		case protoreflect.Uint32Kind, protoreflect.Uint64Kind:
			u = v.Uint()
		default:
			continue
		}
		names = append(names, string(f.Name()))
		values[string(f.Name())] = u
	}
	return names, values
}

func toStatusJSON(s *pb.StatusResponse) statusJSON {
	return statusJSON{
		ID: s.GetId(), AdvertiseAddress: s.GetAdvertiseAddress(), ListenAddress: s.GetListenAddress(),
		Version: s.GetVersion(), Ready: s.GetReady(),
		StartedAt: jsonTime(s.GetStartedAt()), UptimeSeconds: seconds(s.GetUptime()),
		Delivered: s.GetDelivered(), Forwarded: s.GetForwarded(), Duplicates: s.GetDuplicates(),
		Sent: s.GetSent(), Acked: s.GetAcked(), AckFailed: s.GetAckFailed(), Retries: s.GetRetries(),
		GaveUp: s.GetGaveUp(), SendsDropped: s.GetSendsDropped(),
		Invalid: s.GetInvalid(), Malformed: s.GetMalformed(),
		Active: s.GetActive(), Seen: s.GetSeen(),
		TTLSeconds: seconds(s.GetTtl()), Diameter: s.GetDiameter(), HopLatencySeconds: seconds(s.GetHopLatency()),
		Neighbors: s.GetNeighbors(), Members: s.GetMembers(),
		Subscribers: s.GetSubscribers(), SubscriberMissed: s.GetSubscriberMissed(),
		Stream: func() map[string]uint64 { _, v := streamCounters(s.GetStream()); return v }(),
	}
}

// printStatus prints one "key  value" row per field; the keys are the
// JSON keys (durations without their _seconds suffix); "-" is empty.
func printStatus(g *globals, s *pb.StatusResponse) error {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	rows := [][2]string{
		{"id", s.GetId()},
		{"advertise_address", s.GetAdvertiseAddress()},
		{"listen_address", s.GetListenAddress()},
		{"version", s.GetVersion()},
		{"ready", strconv.FormatBool(s.GetReady())},
		{"started_at", timeString(s.GetStartedAt())},
		{"uptime", humanDuration(s.GetUptime())},
		{"delivered", u(s.GetDelivered())},
		{"forwarded", u(s.GetForwarded())},
		{"duplicates", u(s.GetDuplicates())},
		{"sent", u(s.GetSent())},
		{"acked", u(s.GetAcked())},
		{"ack_failed", u(s.GetAckFailed())},
		{"retries", u(s.GetRetries())},
		{"gave_up", u(s.GetGaveUp())},
		{"sends_dropped", u(s.GetSendsDropped())},
		{"invalid", u(s.GetInvalid())},
		{"malformed", u(s.GetMalformed())},
		{"active", u(s.GetActive())},
		{"seen", u(s.GetSeen())},
		{"ttl", humanDuration(s.GetTtl())},
		{"diameter", u(uint64(s.GetDiameter()))},
		{"hop_latency", humanDuration(s.GetHopLatency())},
		{"neighbors", u(uint64(s.GetNeighbors()))},
		{"members", u(uint64(s.GetMembers()))},
		{"subscribers", u(uint64(s.GetSubscribers()))},
		{"subscriber_missed", u(s.GetSubscriberMissed())},
	}
	names, values := streamCounters(s.GetStream())
	for _, name := range names {
		rows = append(rows, [2]string{"stream." + name, u(values[name])})
	}
	tw := newTable(g.stdout)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], orDash(r[1]))
	}
	return tw.Flush()
}
