#!/bin/sh
# Two builds of the gateway side by side in one run: CPU per delivery, RSS per connection
# and latency of each, the two alternating ROUNDS times (this machine is shared: compare only
# within a run). One channel, SUBSCRIBERS subscribers, MESSAGES messages at RATE msg/s.
#   bench/ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]      (after cargo build --release)
# Build the one before in a worktree: git worktree add /tmp/before REV, then
# CARGO_TARGET_DIR=/tmp/before-target cargo build --release there.
# BEFORE_TOML / AFTER_TOML: lines added to that one's configuration, e.g. one binary twice
# with AFTER_TOML='stream.write_window_ms = 0' (dotted keys: the file has no sections).
set -eu
BEFORE=$1
AFTER=$2
ROUNDS=${3:-2}
BENCH=${BENCH:-./target/release/streamgate}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
MESSAGES=${MESSAGES:-5000}
RATE=${RATE:-1000}
PORT=${PORT:-18090}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
printf 'server.listen = "127.0.0.1:%s"\n%s\n' "$PORT" "${BEFORE_TOML:-}" > "$DIR/before.toml"
printf 'server.listen = "127.0.0.1:%s"\n%s\n' "$PORT" "${AFTER_TOML:-}" > "$DIR/after.toml"
round=1
while [ "$round" -le "$ROUNDS" ]; do
  for which in before after; do
    if [ "$which" = before ]; then BIN=$BEFORE; else BIN=$AFTER; fi
    "$BIN" serve --config "$DIR/$which.toml" > /dev/null 2>&1 &
    PID=$!
    sleep 1
    "$BENCH" bench --subscribe-url "http://127.0.0.1:$PORT/sse?channels=bench" \
      --publish-url "http://127.0.0.1:$PORT/channels/bench/messages" \
      --subscribers "$SUBSCRIBERS" --messages "$MESSAGES" --rate "$RATE" --pid "$PID" \
      --json 2>/dev/null | tail -n 1 | python3 -c "
import json, sys
d = json.load(sys.stdin)
s = d['server']
print('$which round $round: %.3f us CPU per delivery, %.2f KiB per connection, p50 %.1f ms, p99 %.1f ms, %d lost'
      % (s['cpu_us_per_delivery'], s['kib_per_connection'], d['latency_us']['p50'] / 1000,
         d['latency_us']['p99'] / 1000, d['lost']))"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
  done
  round=$((round + 1))
done
