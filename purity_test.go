package gossip

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPureCoresImportNoGRPC enforces the layout's first rule (docs/DESIGN.md
// §1): the protocol cores are pure state machines. They may use the
// generated messages (package gossipv1, which needs only the protobuf
// runtime) but not gRPC, the network, goroutine-owning packages of this
// module or the runtime around them. The services' generated code lives in
// gossipv1grpc for exactly this reason.
func TestPureCoresImportNoGRPC(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	forbidden := []string{
		"google.golang.org/grpc",
		"net",
		"net/http",
		"github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc",
		"github.com/grpc-gossip/gossip/memnet",
		"github.com/grpc-gossip/gossip/transport",
	}
	for _, pkg := range []string{"./internal/core", "./internal/swim"} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 5 {
			t.Fatalf("go list -deps %s listed only %v", pkg, deps)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") && f != "net" {
					t.Errorf("%s depends on %s (through %s): the pure core must not", pkg, f, d)
				}
			}
		}
	}
}
