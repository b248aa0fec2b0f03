#!/bin/sh
# System calls per delivery: SUBSCRIBERS subscribers on one channel, RATE msg/s published
# for 8 s; the gateway's system calls counted (perf, syscall tracepoints) over 4 s in the
# middle, divided by the deliveries /metrics counted over the same window.
#   bench/syscalls.sh [SUBSCRIBERS] [RATE]      (after cargo build --release; needs perf)
# WINDOW=MS sets [stream] write_window_ms (the default otherwise).
set -eu
BIN=${BIN:-./target/release/streamgate}
SUBSCRIBERS=${1:-1000}
RATE=${2:-1000}
PORT=${PORT:-18091}
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
printf '[server]\nlisten = "127.0.0.1:%s"\n' "$PORT" > "$DIR/g.toml"
if [ -n "${WINDOW:-}" ]; then printf '[stream]\nwrite_window_ms = %s\n' "$WINDOW" >> "$DIR/g.toml"; fi
"$BIN" serve --config "$DIR/g.toml" > /dev/null 2>&1 &
PID=$!
sleep 1
"$BIN" bench --subscribe-url "http://127.0.0.1:$PORT/sse?channels=bench" \
  --publish-url "http://127.0.0.1:$PORT/channels/bench/messages" \
  --subscribers "$SUBSCRIBERS" --messages $((RATE * 8)) --rate "$RATE" > "$DIR/bench.txt" 2>&1 &
BENCH=$!
sleep 3
delivered() {
  curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^streamgate_messages_delivered_total /{print $2}'
}
EVENTS=syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield
before=$(delivered)
perf stat -x, -e "$EVENTS" -p "$PID" -o "$DIR/perf.txt" -- sleep 4
after=$(delivered)
wait "$BENCH" || true
echo "deliveries in the window: $((after - before)) ($SUBSCRIBERS subscribers, $RATE msg/s)"
awk -F, -v n=$((after - before)) '/syscalls:/ {
  split($3, name, ":"); sub("sys_enter_", "", name[2]);
  printf "%-12s %10d  %.4f per delivery\n", name[2], $1, $1 / n }' "$DIR/perf.txt"
