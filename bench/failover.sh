#!/usr/bin/env bash
# Failover on Redis (docs/BENCHMARKS.md, "Many nodes on Redis"): three gateways share a
# polled API and a relay; the first node's subscriber makes it the lease holder; two
# subscribers on the other nodes note their events; the holder is killed (SIGKILL) and the
# time to the next event on each other node is printed. Build first: cargo build --release.
# usage: bench/failover.sh /apis/q/doc   (a polled topic)  or  bench/failover.sh /r/sse  (a relay)
HERE="$(dirname "$0")"
BIN="$HERE/../target/release/streamgate"
DIR=$(mktemp -d)
redis-cli -p 16600 shutdown nosave >/dev/null 2>&1; sleep 0.3
redis-server --port 16600 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
python3 "$HERE/failover_upstream.py" 18700 > "$DIR/upstream.log" 2>&1 & UP=$!
printf '[bus]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:16600/0"\n[poll]\nmin_interval_ms = 100\n[[api]]\nname = "q"\nbase_url = "http://127.0.0.1:18700"\ninterval_ms = 200\n[[relay]]\nname = "r"\nlisten_path = "/r"\nupstream = "http://127.0.0.1:18700/"\n' > "$DIR/c.toml"
P=()
for i in 1 2 3; do $BIN serve --config "$DIR/c.toml" --listen 127.0.0.1:1871$i > /dev/null 2>&1 & P+=($!); done
sleep 1
PATHQ=$1
curl -sN "localhost:18711$PATHQ" > /dev/null & C1=$!
sleep 1
python3 - "$PATHQ" "${P[0]}" <<'PY'
import sys, time, socket, os, signal, threading
path, pid = sys.argv[1], int(sys.argv[2])
def open_stream(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    return s
streams = [open_stream(18712), open_stream(18713)]
last = {}
def reader(i, s):
    buf = b""
    while True:
        d = s.recv(65536)
        if not d: return
        if b"\nid: " in b"\n" + d or d.startswith(b"id: "):
            last[i] = time.time()
for i, s in enumerate(streams):
    threading.Thread(target=reader, args=(i, s), daemon=True).start()
time.sleep(2)
killed = time.time()
os.kill(pid, signal.SIGKILL)
time.sleep(0.05)
start = time.time()
gaps = []
while time.time() - killed < 15:
    time.sleep(0.01)
    if all(last.get(i, 0) > killed + 0.3 for i in range(2)):
        break
# the first event after the kill: the largest silence
print("seconds from kill to the next event on each other node:", [round(last.get(i,0) - killed, 2) for i in range(2)])
PY
kill ${P[1]} ${P[2]} $C1 $UP 2>/dev/null
redis-cli -p 16600 shutdown nosave >/dev/null 2>&1
cat "$DIR/upstream.log"
rm -rf "$DIR"
