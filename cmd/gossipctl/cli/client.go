package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/spf13/cobra"

	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// maxRecvBytes bounds a reply (a subscribed message can be as large as the
// node's payload limit, which gossipd may raise above gRPC's 4 MiB).
const maxRecvBytes = 64 << 20

// dial creates the client connection. grpc.NewClient does not connect:
// the first RPC does, and fails fast (Unavailable) when nothing listens.
func (g *globals) dial() (*grpc.ClientConn, error) {
	creds, err := g.sec.dialOptions()
	if err != nil {
		return nil, failf("%v", err) // a file that cannot be read: the command fails
	}
	conn, err := grpc.NewClient(g.addr, append(creds,
		grpc.WithUserAgent("gossipctl"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
		// Notice a daemon that vanished under a long subscribe; pings
		// only while a stream is open, within gossipd's enforcement
		// policy (at most one per 10s).
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)...)
	if err != nil {
		// A target grpc cannot parse: a usage error.
		return nil, fmt.Errorf("invalid --addr %q: %v", g.addr, err)
	}
	return conn, nil
}

// unary calls one unary RPC with the --timeout deadline and turns its
// error into a failure for the command named name.
func unary[Req, Resp any](ctx context.Context, g *globals, name string, rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	var p peer.Peer
	resp, err := rpc(cctx, req, grpc.Peer(&p))
	if err != nil {
		var zero Resp
		return zero, g.rpcFailure(ctx, name, err, p.Addr != nil)
	}
	return resp, nil
}

// query is the body of a read-only subcommand: one NodeService call, then
// the response as JSON (-o json) or as a table.
func query[Req, Resp any](cmd *cobra.Command, g *globals, name string,
	rpc func(pbgrpc.NodeServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req,
	asJSON func(Resp) any, table func(Resp) error) error {
	conn, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pbgrpc.NewNodeServiceClient(conn)
	call := func(ctx context.Context, req Req, opts ...grpc.CallOption) (Resp, error) {
		return rpc(client, ctx, req, opts...)
	}
	resp, err := unary(cmd.Context(), g, name, call, req)
	if err != nil {
		return err
	}
	if g.json() {
		return output(name, writeJSON(g.stdout, asJSON(resp)))
	}
	return output(name, table(resp))
}

// rpcFailure phrases an RPC error as one line; a *failure, which the
// command's own rpc function phrased already, is kept as it is. reached
// says whether the RPC got as far as a connection to the daemon
// (grpc.Peer was filled in):
// Unavailable or DeadlineExceeded without one means nothing answered at
// --addr; with one, the daemon itself answered (e.g. Unavailable "node is
// shutting down") and its status is shown as is.
func (g *globals) rpcFailure(ctx context.Context, name string, err error, reached bool) error {
	if ctx.Err() != nil {
		return failf("%s: interrupted", name)
	}
	var f *failure
	if errors.As(err, &f) {
		return f // already phrased by the command (publish: a payload too large)
	}
	st := status.Convert(err)
	switch code := st.Code(); {
	case code == codes.DeadlineExceeded && !reached:
		return failf("cannot reach gossipd at %s: no answer within %v", g.addr, g.timeout)
	case code == codes.Unavailable && !reached && g.sec.ca != "" && tlsHint(st.Message()) != "":
		return failf("cannot connect to gossipd at %s over TLS: %s", g.addr, tlsHint(st.Message()))
	case code == codes.Unavailable && !reached && g.sec.ca == "" && strings.Contains(st.Message(), "server preface"):
		return failf("cannot reach gossipd at %s: the connection closed before gRPC started (%s): if the node has TLS on, give --tls-ca", g.addr, dialReason(st.Message()))
	case code == codes.Unavailable && !reached:
		return failf("cannot reach gossipd at %s: %s", g.addr, dialReason(st.Message()))
	case code == codes.DeadlineExceeded:
		return failf("%s: gossipd at %s did not answer within %v (%s)", name, g.addr, g.timeout, code)
	default:
		return failf("%s: %s (%s)", name, st.Message(), code)
	}
}

// dialReason extracts the root cause from grpc's connection error, e.g.
// "connection refused" from
//
//	connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:9001: connect: connection refused"
func dialReason(msg string) string {
	m := strings.TrimRight(strings.TrimSpace(msg), `"`)
	if i := strings.LastIndex(m, ": "); i >= 0 && i+2 < len(m) {
		return m[i+2:]
	}
	if m == "" {
		return "unavailable"
	}
	return m
}
