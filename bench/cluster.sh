#!/usr/bin/env bash
# Many nodes on one Redis, measured with `streamgate bench` (docs/BENCHMARKS.md, "Many
# nodes on Redis"): starts redis-server on port 16400 and NODES gateways on 18401..., spreads
# SUBS subscribers over them, publishes MESSAGES at RATE per second to the first node, and
# prints the report and Redis's CPU. Build first: cargo build --release.
# usage: bench/cluster.sh NODES SUBS MESSAGES RATE
set -u
N=$1; SUBS=$2; MSGS=$3; RATE=$4
BIN="$(dirname "$0")/../target/release/streamgate"
CONF=$(mktemp --suffix=.toml)
redis-cli -p 16400 shutdown nosave >/dev/null 2>&1
sleep 0.5
redis-server --port 16400 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --maxclients 50000 >/dev/null
printf '[bus]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:16400/0"\n[limits]\nmax_connections = 60000\nmax_connections_per_ip = 60000\n' > "$CONF"
URLS=(); PIDS=()
for i in $(seq 1 $N); do
  port=$((18400+i))
  RUST_LOG=warn $BIN serve --config "$CONF" --listen 127.0.0.1:$port > /dev/null 2>&1 &
  PIDS+=($!)
  URLS+=(--subscribe-url "http://127.0.0.1:$port/sse?channels=bench")
done
sleep 1
RPID=$(pgrep -f "redis-server 127.0.0.1:16400")
PIDLIST=$(IFS=,; echo "${PIDS[*]}")
R0=$(awk '{print $14+$15}' /proc/$RPID/stat)
$BIN bench "${URLS[@]}" --publish-url http://127.0.0.1:18401/channels/bench/messages \
  --subscribers $SUBS --messages $MSGS --rate $RATE --source-addrs 8 --pid $PIDLIST --timeout-secs 600
R1=$(awk '{print $14+$15}' /proc/$RPID/stat)
echo "redis cpu ticks: $((R1-R0)) (1 tick = 10 ms)"
kill "${PIDS[@]}"
redis-cli -p 16400 shutdown nosave >/dev/null 2>&1
rm -f "$CONF"
