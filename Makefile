# Developer and CI entry points. `make test` is the full check run by .ci/run.
# The protobuf tools (buf, protoc-gen-go, protoc-gen-go-grpc) are pinned in
# tools/go.mod and run with `go tool`; nothing has to be installed on PATH.

GO ?= go
GOFMT ?= $(shell $(GO) env GOROOT)/bin/gofmt
TOOL := $(GO) tool -modfile=tools/go.mod
BUF := $(TOOL) buf

.PHONY: all
all: test

.PHONY: proto
proto: ## Regenerate proto/**/*.pb.go from the .proto files (see buf.gen.yaml).
	$(BUF) generate

.PHONY: proto-lint
proto-lint: ## Lint the .proto files (see buf.yaml).
	$(BUF) lint

.PHONY: proto-check
proto-check: proto ## Fail if the committed generated code differs from a fresh generation.
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { \
		echo "proto-check: not inside a git work tree; cannot check for drift." >&2; exit 1; }
	@if [ -n "$$(git status --porcelain -- proto)" ]; then \
		echo "" >&2; \
		echo "proto-check: FAILED: proto/ differs from what is committed." >&2; \
		echo "Either the generated code is stale or files under proto/ are uncommitted." >&2; \
		echo "Run 'make proto' and commit everything under proto/. Drift:" >&2; \
		git status --porcelain -- proto >&2; \
		git --no-pager diff --stat -- proto >&2; \
		exit 1; \
	fi
	@echo "proto-check: generated code is up to date."

# The default path's scenarios (streams, Plumtree, SWIM over memnet in
# virtual time) run at 40 nodes under the race detector, which slows them
# about tenfold, and again at 200 nodes without it.
SCENARIOS := TestScenario|TestEveryNodeHasAnEagerParent|TestLoadLargePayloadsNoLoss

.PHONY: test
test: ## vet, race tests (library and bench module), the 200-node scenarios, proto lint and drift check, the Kubernetes manifests, the kill -9 loop (test-crash), and test-docker when a Docker Engine is reachable (REQUIRE_DOCKER=1: fail when it is not); stops at the first failure.
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '$(SCENARIOS)' -scenario.nodes=200 .
	$(MAKE) bench-test proto-lint proto-check k8s-validate test-crash
	@if docker info >/dev/null 2>&1; then \
		$(MAKE) test-docker; \
	elif [ "$(REQUIRE_DOCKER)" = 1 ]; then \
		echo "make test: FAILED: REQUIRE_DOCKER=1 but no Docker Engine is reachable ('docker info' fails): the multi-host fault suite cannot run" >&2; \
		exit 1; \
	else \
		echo "make test: NOTE: no Docker Engine is reachable: the multi-host fault suite (make test-docker) did NOT run" >&2; \
	fi

# The Kubernetes manifests, rendered with the kustomize library and
# decoded strictly into the k8s.io/api types, without a cluster. Its own
# module (deploy/kubernetes/validate/go.mod): the Kubernetes libraries stay
# out of the gossip module.
.PHONY: k8s-validate
k8s-validate: ## Render deploy/kubernetes (base, overlays/tls) and validate every object strictly against the Kubernetes API types.
	cd deploy/kubernetes/validate && $(GO) vet ./... && $(GO) test -count=1 ./...

# The multi-host fault suite (e2e/docker, build tag docker): builds the
# image, runs 5 containers and its fault scenarios; about 1.5 minutes.
# Needs a Docker Engine, and root with nsenter, iptables and tc on the
# host; fails (does not skip) without them.
.PHONY: test-docker
test-docker: ## The multi-host fault suite on the Docker Engine (kill, partition, rolling restart, loss); fails if Docker is unreachable.
	$(GO) vet -tags docker ./e2e/docker
	$(GO) test -tags docker -count=1 -v -timeout 10m ./e2e/docker

SCENARIO_NODES ?= 200
.PHONY: scenarios
scenarios: ## The default path's fault scenarios with their figures (docs/DESIGN.md); SCENARIO_NODES=1000 for the runs at scale.
	$(GO) test -count=1 -v -run '$(SCENARIOS)' -scenario.nodes=$(SCENARIO_NODES) -scenario.churn=$(SCENARIO_NODES) -timeout 120m .

# The crash loop (e2e/crash_test.go, build tag crash): 3 gossipd with
# --data-dir, a publisher through all of them, CRASH_CYCLES kill -9 +
# restart cycles of random nodes (about 3 minutes at 50); every node's log must
# hold every acknowledged publish exactly once.
CRASH_CYCLES ?= 50
.PHONY: test-crash
test-crash: ## kill -9 loop on real daemons with --data-dir: nothing lost, nothing twice, subscribers resume by offset (CRASH_CYCLES, default 50).
	CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -tags crash -count=1 -v -run TestCrashLoop -timeout 10m ./e2e

.PHONY: bench-test
bench-test: ## vet and race-test the bench module (its own go.mod: memberlist, libp2p).
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 ./...

.PHONY: fmt-check
fmt-check: ## Fail if any Go file is not gofmt-formatted.
	@out="$$($(GOFMT) -l .)" || exit 1; \
	if [ -n "$$out" ]; then \
		echo "fmt-check: FAILED: these files need gofmt (run 'gofmt -w' on them):" >&2; \
		echo "$$out" >&2; \
		exit 1; \
	fi
	@echo "fmt-check: ok"

.PHONY: demo
demo: ## Run the demo.
	$(GO) run ./cmd/gossip-demo

.PHONY: build
build: ## Build gossipd, gossipctl and gossip-demo into bin/.
	$(GO) build -o bin/ ./cmd/...

# Release binaries: static (CGO_ENABLED=0, so the pure-Go DNS resolver
# and no libc), -trimpath (no build paths in them), VCS-stamped
# (-buildvcs=true: this machine's go env may turn stamping off; --version
# reads it back), stripped of the symbol table (-s -w; the build info
# that --version reads stays). dist/NAME-OS-ARCH plus dist/SHA256SUMS.
DIST ?= dist
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
RELEASE_CMDS := gossipd gossipctl
RELEASE_FLAGS := -trimpath -buildvcs=true -ldflags='-s -w'
.PHONY: release
release: ## Static gossipd and gossipctl for linux/amd64 and linux/arm64 into dist/, with dist/SHA256SUMS.
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		for c in $(RELEASE_CMDS); do \
			echo "build $(DIST)/$$c-$$os-$$arch"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(RELEASE_FLAGS) -o $(DIST)/$$c-$$os-$$arch ./cmd/$$c; \
		done; \
	done
	cd $(DIST) && sha256sum $(foreach p,$(RELEASE_PLATFORMS),$(foreach c,$(RELEASE_CMDS),$(c)-$(subst /,-,$(p)))) > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

# The container image (deploy/docker/Dockerfile): FROM scratch with the
# static binaries built here, since nothing can be pulled from a registry.
IMAGE ?= gossip:dev
.PHONY: image
image: ## Build the container image $(IMAGE) (FROM scratch, static gossipd + gossipctl, non-root, /data) and print its size.
	IMAGE=$(IMAGE) scripts/image.sh

# Compose: `docker compose` (v2) where it exists, else docker-compose (v1).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_PROJECT ?= gossip
.PHONY: compose-up
compose-up: image ## Build the image and start the 5-node cluster of deploy/compose.yaml (gRPC on 127.0.0.1:19001-19005, admin on :19101-19105).
	GOSSIP_IMAGE=$(IMAGE) $(COMPOSE) -f deploy/compose.yaml -p $(COMPOSE_PROJECT) up -d
	@echo "try: gossipctl --addr 127.0.0.1:19001 members"

.PHONY: compose-down
compose-down: ## Stop and remove the Compose cluster (its volumes stay; add COMPOSE_DOWN_FLAGS=-v to remove them).
	GOSSIP_IMAGE=$(IMAGE) $(COMPOSE) -f deploy/compose.yaml -p $(COMPOSE_PROJECT) down $(COMPOSE_DOWN_FLAGS)

N ?= 5
.PHONY: cluster
cluster: ## Run N gossipd processes on loopback joined through the first (make cluster N=5; TLS=1 for mutual TLS and a token); Ctrl-C stops them.
	TLS=$(TLS) scripts/cluster.sh $(N)

# The benchmark suite is its own module (bench/go.mod), so memberlist's and
# libp2p's dependencies stay out of the library. See docs/PERFORMANCE.md.
BENCH_FLAGS ?=
.PHONY: bench
bench: ## Full benchmark vs memberlist and GossipSub: N=20,50 × 100 B/1 KiB/64 KiB × 2 profiles (see docs/PERFORMANCE.md).
	cd bench && $(GO) run ./cmd/bench $(BENCH_FLAGS)

.PHONY: floor
floor: ## The floor: CPU per gossip copy over one bare gRPC stream on this machine (batches 1/16/64/256), the ceiling the runtime is compared with.
	cd bench && $(GO) run ./cmd/floor $(FLOOR_FLAGS)

.PHONY: bench-quick
bench-quick: ## Quick benchmark: N=20, 100 B, both profiles, every system, with the overload phase; about 1–2 minutes per system and profile.
	cd bench && $(GO) run ./cmd/bench --quick $(BENCH_FLAGS)
