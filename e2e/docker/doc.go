// Package docker is the multi-host fault suite: five gossipd containers of
// the image that `make image` builds, on private Docker networks, driven
// from the test process through the client API (gossip.v1.NodeService)
// on ports published to the host's loopback, with faults made by Docker
// and the kernel rather than simulated: docker kill, a partition made
// with iptables inside the containers' network namespaces, a rolling
// restart, and packet loss (tc netem, or iptables' statistic match on a
// kernel without netem).
//
// The tests are behind the build tag docker, so that a plain
// `go test ./...` reports this package as having no test files instead of
// passing without testing anything. Run them with `make test-docker`
// (go test -tags docker ./e2e/docker), which needs a reachable Docker
// Engine, and, as root, nsenter, iptables and tc on the host;
// with the tag set, a missing Docker Engine or tool fails the run.
package docker
