//go:build docker

package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// composeCmd is `docker compose` (v2) where it exists, else
// docker-compose (v1), as the Makefile chooses.
func composeCmd(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("neither `docker compose` nor docker-compose is installed: deploy/compose.yaml cannot be tested")
	return nil
}

// TestCompose: deploy/compose.yaml, as `make compose-up` runs it (on free
// host ports, under a project name of its own), gives a 5-node cluster
// that a client on the host can publish to and subscribe from.
func TestCompose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	compose := composeCmd(t)
	project := suite.prefix + "-compose"
	env := append(os.Environ(), "GOSSIP_IMAGE="+suite.image)
	grpcAddr := map[int]string{}
	for n := 1; n <= numNodes; n++ {
		for _, kind := range []string{"GRPC", "ADMIN"} {
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			env = append(env, fmt.Sprintf("GOSSIP_NODE%d_%s=%s", n, kind, port))
			if kind == "GRPC" {
				grpcAddr[n] = "127.0.0.1:" + port
			}
		}
	}
	run := func(args ...string) {
		t.Helper()
		full := append(append(append([]string{}, compose[1:]...), "-f", filepath.Join(root, "deploy", "compose.yaml"), "-p", project), args...)
		cmd := exec.CommandContext(ctx, compose[0], full...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", compose[0], strings.Join(full, " "), err, out)
		}
	}
	began := time.Now()
	run("up", "-d")
	t.Cleanup(func() {
		cmd := exec.Command(compose[0], append(append([]string{}, compose[1:]...), "-f", filepath.Join(root, "deploy", "compose.yaml"), "-p", project, "down", "-v")...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	conns := map[int]*grpc.ClientConn{}
	for n, addr := range grpcAddr {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		conns[n] = cc
	}
	err = waitFor(ctx, 60*time.Second, func() error {
		for n, cc := range conns {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := pbgrpc.NewNodeServiceClient(cc).Members(c, &pb.MembersRequest{})
			cancel()
			if err != nil {
				return fmt.Errorf("node%d: %w", n, err)
			}
			alive := 0
			for _, m := range resp.GetMembers() {
				if m.GetState() == pb.MemberState_MEMBER_STATE_ALIVE {
					alive++
				}
			}
			if alive != numNodes {
				return fmt.Errorf("node%d sees %d alive", n, alive)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compose: 5 nodes up and each seeing all 5 alive %v after compose up", time.Since(began).Round(time.Millisecond))

	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	stream, err := pbgrpc.NewNodeServiceClient(conns[4]).Subscribe(subCtx, &pb.SubscribeRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	// The subscription is attached once node4 counts it.
	err = waitFor(ctx, 20*time.Second, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := pbgrpc.NewNodeServiceClient(conns[4]).Status(c, &pb.StatusRequest{})
		if err != nil {
			return err
		}
		for _, c := range st.GetCounters() {
			if c.GetName() == "core.subscribers" && c.GetValue() >= 1 {
				return nil
			}
		}
		return fmt.Errorf("node4: the subscription is not attached yet")
	})
	if err != nil {
		t.Fatal(err)
	}
	id := project + "-hello"
	pc, pcancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = pbgrpc.NewNodeServiceClient(conns[1]).Publish(pc, &pb.PublishRequest{Id: id, Payload: []byte("hello from the host")})
	pcancel()
	if err != nil {
		t.Fatalf("publish through node1: %v", err)
	}
	got := make(chan *pb.SubscribeResponse, 1)
	go func() {
		m, err := stream.Recv()
		if err == nil {
			got <- m
		}
	}()
	select {
	case m := <-got:
		if m.GetId() != id || string(m.GetPayload()) != "hello from the host" || m.GetOrigin() != "node1" {
			t.Errorf("node4 delivered %v, want %s from node1", m, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node4's subscriber got nothing within 10 s of the publish through node1")
	}
}
