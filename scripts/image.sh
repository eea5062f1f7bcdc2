#!/usr/bin/env bash
# Builds gossipd's container image (deploy/docker/Dockerfile, FROM scratch)
# without pulling anything: the static binaries are built here, staged with
# the host's CA certificates and a minimal passwd/group, and docker build
# gets that staging directory as its context.
#
#   scripts/image.sh [TAG]      TAG defaults to $IMAGE, else gossip:dev
#
# IMAGE_ARCH (default: go env GOARCH) picks the binaries' architecture.
# Prints the image's id and size when done.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
tag="${1:-${IMAGE:-gossip:dev}}"
arch="${IMAGE_ARCH:-$(go env GOARCH)}"
certs=/etc/ssl/certs/ca-certificates.crt
stage=build/image

if ! command -v docker >/dev/null 2>&1; then
	echo "image.sh: docker is not installed; the image needs a Docker Engine" >&2
	exit 1
fi
if [ ! -r "$certs" ]; then
	echo "image.sh: $certs is missing: install the ca-certificates package (apt-get install ca-certificates)" >&2
	exit 1
fi

rm -rf "$stage"
mkdir -p "$stage/data"
CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=true -ldflags='-s -w' \
	-o "$stage/" ./cmd/gossipd ./cmd/gossipctl
cp "$certs" "$stage/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/data:/sbin/nologin\n' >"$stage/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$stage/group"

rev="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
docker build -q -f deploy/docker/Dockerfile \
	--label org.opencontainers.image.revision="$rev" \
	--label org.opencontainers.image.source=github.com/grpc-gossip/gossip \
	-t "$tag" "$stage" >/dev/null
docker image inspect -f "image.sh: built $tag {{.Id}}, {{.Size}} bytes ($arch)" "$tag"
