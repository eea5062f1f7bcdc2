package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func newHealthCmd(g *globals) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check the node's gRPC health status (exit 0 only when SERVING)",
		Long: `Health asks the node's standard gRPC health service (grpc.health.v1.Health)
for the status of --service ("" is the server as a whole) and prints it:
SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN. The exit status is 0 only
when it is SERVING, so that it can serve as a readiness probe.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			resp, err := unary(cmd.Context(), g, "health", healthpb.NewHealthClient(conn).Check,
				&healthpb.HealthCheckRequest{Service: service})
			if err != nil {
				return err
			}
			st := resp.GetStatus()
			if g.json() {
				err = writeJSON(g.stdout, struct {
					Service string `json:"service"`
					Status  string `json:"status"`
				}{service, st.String()})
			} else {
				_, err = fmt.Fprintln(g.stdout, st)
			}
			if err != nil {
				return output("health", err)
			}
			if st != healthpb.HealthCheckResponse_SERVING {
				return &failure{} // the status printed is the message
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", `the service to check, e.g. gossip.v1.NodeService ("": the whole server)`)
	return cmd
}
