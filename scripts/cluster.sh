#!/usr/bin/env bash
# Starts a local cluster of N gossipd processes on loopback, joined through
# the first, and stops them all on Ctrl-C (or SIGTERM).
#
#   scripts/cluster.sh [N]          (make cluster N=5)
#   TLS=1 scripts/cluster.sh [N]    (make cluster N=5 TLS=1): mutual TLS and
#                                   a bearer token, with a CA and certificates
#                                   made by gossipctl tls in $LOG_DIR/pki
#
# Node i (1-based) serves gRPC on 127.0.0.1:$((BASE_PORT + 2*(i-1))) and HTTP
# (/healthz, /readyz, /metrics, the dashboard at /) on the port after it;
# logs go to $LOG_DIR/node-i.log.
set -euo pipefail

N=${1:-${N:-5}}
BASE_PORT=${BASE_PORT:-9001}
HOST=127.0.0.1
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_DIR=${LOG_DIR:-$(mktemp -d -t gossip-cluster.XXXXXX)}
mkdir -p "$LOG_DIR"
BIN=${BIN:-bin}

if ! [[ $N =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 200 ]; then
	echo "cluster: N must be between 1 and 200, got '$N'" >&2
	exit 2
fi

echo "building gossipd and gossipctl into $BIN/ ..."
go build -o "$BIN/" ./cmd/gossipd ./cmd/gossipctl

pids=()
stop() {
	trap - INT TERM EXIT
	if [ ${#pids[@]} -gt 0 ]; then
		echo
		echo "stopping ${#pids[@]} nodes ..."
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
	echo "logs are in $LOG_DIR"
}
trap stop INT TERM EXIT

TLS=${TLS:-0}
CTL=("$BIN/gossipctl")
if [ "$TLS" = 1 ]; then
	PKI="$LOG_DIR/pki"
	mkdir -p "$PKI"
	"$BIN/gossipctl" tls ca create --out-dir "$PKI" >/dev/null
	for i in $(seq 1 "$N"); do
		"$BIN/gossipctl" tls cert create --node "node-$i" --ca "$PKI/gossip-ca.pem" --ca-key "$PKI/gossip-ca-key.pem" --out-dir "$PKI" >/dev/null
	done
	"$BIN/gossipctl" tls cert create --client ops --ca "$PKI/gossip-ca.pem" --ca-key "$PKI/gossip-ca-key.pem" --out-dir "$PKI" >/dev/null
	TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	echo "$TOKEN" >"$PKI/tokens"
	chmod 600 "$PKI/tokens"
	CTL=("$BIN/gossipctl" --tls-ca "$PKI/gossip-ca.pem" --token "$TOKEN")
	echo "TLS=1: CA, node and client certificates and a token in $PKI"
fi

seed="$HOST:$BASE_PORT"
for i in $(seq 1 "$N"); do
	port=$((BASE_PORT + 2 * (i - 1)))
	args=(--id "node-$i" --listen "$HOST:$port" --admin-listen "$HOST:$((port + 1))"
		--data-dir "$LOG_DIR/node-$i" --log-format text)
	if [ "$i" -gt 1 ]; then
		args+=(--join "$seed")
	fi
	if [ "$TLS" = 1 ]; then
		args+=(--tls-cert "$PKI/node-node-$i.pem" --tls-key "$PKI/node-node-$i-key.pem" --tls-ca "$PKI/gossip-ca.pem"
			--auth-token-file "$PKI/tokens")
	fi
	"$BIN/gossipd" "${args[@]}" >"$LOG_DIR/node-$i.log" 2>&1 &
	pids+=($!)
done

# Wait until every node is ready (joined), at most 30 s.
for i in $(seq 1 "$N"); do
	port=$((BASE_PORT + 2 * (i - 1)))
	for _ in $(seq 1 300); do
		if "${CTL[@]}" --addr "$HOST:$port" --timeout 1s health >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
			echo "cluster: node-$i exited; its log:" >&2
			cat "$LOG_DIR/node-$i.log" >&2
			exit 1
		fi
		sleep 0.1
	done
done

last=$((BASE_PORT + 2 * (N - 1)))
echo
echo "live dashboards (members, neighbours, rates, latency, events):"
for i in $(seq 1 "$N"); do
	echo "  node-$i  http://$HOST:$((BASE_PORT + 2 * (i - 1) + 1))/"
done
if [ "$TLS" = 1 ]; then
	cat <<MSG

$N gossipd nodes are running with mutual TLS: node-1 on $seed ... node-$N on $HOST:$last (logs: $LOG_DIR)

  export GOSSIPCTL_TLS_CA=$PKI/gossip-ca.pem GOSSIPCTL_TOKEN=$TOKEN
  $BIN/gossipctl --addr $HOST:$last subscribe                  # watch deliveries on the last node
  $BIN/gossipctl --addr $seed publish "hello"                  # publish on the first (with the token)
  $BIN/gossipctl --addr $seed --tls-cert $PKI/client-ops.pem --tls-key $PKI/client-ops-key.pem members   # with the client certificate
  $BIN/gossipctl --addr $seed status                           # [security] counts refusals
  $BIN/gossipctl --addr $seed members --tls-ca "" --token ""   # plaintext: refused
  grpcurl -cacert $PKI/gossip-ca.pem -H "authorization: Bearer $TOKEN" -import-path proto -proto gossip/v1/gossip_rpc.proto $seed gossip.v1.NodeService/Members

Ctrl-C stops them all.
MSG
	wait
	exit 0
fi
cat <<MSG

$N gossipd nodes are running: node-1 on $seed ... node-$N on $HOST:$last (logs: $LOG_DIR)

  $BIN/gossipctl --addr $HOST:$last subscribe                  # watch deliveries on the last node
  $BIN/gossipctl --addr $seed publish "hello"                  # publish on the first
  echo hi | $BIN/gossipctl --addr $HOST:$((BASE_PORT + 2)) publish -   # from stdin
  $BIN/gossipctl --addr $seed members                          # who is there
  $BIN/gossipctl --addr $seed status
  grpcurl -plaintext -d '{"hash":"h1","fromHash":"x","payload":"hi"}' $seed gossip.v1.Gossip/PutMessageToClient
  curl -s http://$HOST:$((BASE_PORT + 1))/readyz
  curl -s http://$HOST:$((BASE_PORT + 1))/metrics | grep ^gossip_messages
  $BIN/gossipctl --addr $seed watch                            # live membership events, neighbour changes, warnings

Ctrl-C stops them all.
MSG
wait
