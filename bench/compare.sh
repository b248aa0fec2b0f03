#!/usr/bin/env bash
# Side-by-side load test of Nchan, Pushpin and streamgate with `streamgate bench`.
#
# Every server runs on loopback with the configuration kept in bench/, under a temporary
# directory, and is started afresh for each scenario:
#   idle     15,000 idle SSE subscribers held 5 s: server memory per connection
#   fanout   1,000 subscribers on one channel, every server at the same offered publish
#            rates (a server's series ends after it missed three steps in a row):
#            deliveries/s, p50/p99 latency and CPU per delivery at each rate, side by side
#   latency  10,000 subscribers, 1 message/s for 20 s: latency percentiles and losses
# Results (raw JSON reports and logs) stay in the run directory; the tables go into the
# last section of docs/BENCHMARKS.md and the chart into docs/img/compare.svg.
#
# Usage: bench/compare.sh [--runs N] [--servers "nchan pushpin streamgate"]
#                         [--scenarios "idle fanout latency"] [--quick] [--no-docs] [--out DIR]
#   --runs N     repeat the whole comparison N times (servers interleaved) and report each
#   --scenarios  run only these (implies --no-docs: the doc holds every scenario)
#   --quick      small numbers, to check the set-up in about a minute (implies --no-docs)
#   --no-docs    leave docs/ alone; only print the tables
#   --out DIR    keep the run's files there (default: a new /tmp/streamgate-compare.XXXX)
# Environment: STREAMGATE_BIN (server, default target/release/streamgate), BENCH_BIN (load
# tool, default the same binary); both are copied into the run directory first, so a rebuild
# during the run changes nothing.
#
# Installs nothing: when something is missing it prints the apt-get line and stops.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/bench

RUNS=1
SERVERS="nchan pushpin streamgate"
SCENARIOS="idle fanout latency"
QUICK=0
DOCS=1
OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --quick) QUICK=1; DOCS=0; shift ;;
        --no-docs) DOCS=0; shift ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 64 ;;
    esac
done
case $RUNS in ''|*[!0-9]*|0) echo "compare.sh: --runs wants a positive number" >&2; exit 64 ;; esac
for s in $SERVERS; do
    case $s in nchan|pushpin|streamgate) ;; *) echo "compare.sh: unknown server $s" >&2; exit 64 ;; esac
done
for s in $SCENARIOS; do
    case $s in idle|fanout|latency) ;; *) echo "compare.sh: unknown scenario $s" >&2; exit 64 ;; esac
done
runs_scenario() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
for s in idle fanout latency; do runs_scenario "$s" || DOCS=0; done

# Scenario parameters: the same for every server.
IDLE_SUBS=15000
IDLE_HOLD=5
FANOUT_SUBS=1000
FANOUT_RATES="50 100 200 500 1000 2000"
# A server's series ends after this many steps missed in a row: the steps past its limit
# still show what it does at the rate offered to the others.
FANOUT_MISSES=3
STEP_SECS=5
# Publish requests in flight: at 2,000 msg/s a server may take 64 ms to answer each before
# the publisher, rather than the server, sets the pace (the reports' publish round trip
# shows how long each server took).
PUBLISH_CONCURRENCY=128
LATENCY_SUBS=10000
LATENCY_MESSAGES=20
SOURCE_ADDRS=4
# Pushpin answers 502 when more than about 100 subscriptions wait for its backend at once;
# every server gets the same, smaller connect window.
CONNECT_WINDOW=64
if [ "$QUICK" = 1 ]; then
    IDLE_SUBS=1000; IDLE_HOLD=1; FANOUT_SUBS=100; FANOUT_RATES="10 100"; STEP_SECS=2
    LATENCY_SUBS=500; LATENCY_MESSAGES=3
fi

# Ports on 127.0.0.1.
SG_PORT=18401
NCHAN_PORT=18402
PUSHPIN_PORT=18403
BACKEND_PORT=18404
PUSHPIN_PUBLISH_PORT=5561
PUSHPIN_OTHER_PORTS="5560 5562 5563"

NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
STREAMGATE_BIN=${STREAMGATE_BIN:-$ROOT/target/release/streamgate}
BENCH_BIN=${BENCH_BIN:-$STREAMGATE_BIN}

say() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- what is needed ------

check_needs() {
    local missing=() pkgs=()
    need() { command -v "$1" >/dev/null 2>&1 || { missing+=("$1"); pkgs+=("$2"); }; }
    for s in $SERVERS; do
        case $s in
            nchan)
                need nginx nginx
                [ -f "$NCHAN_MODULE" ] || { missing+=("$NCHAN_MODULE"); pkgs+=(libnginx-mod-nchan); } ;;
            pushpin)
                need pushpin pushpin; need condure condure; need zurl zurl ;;
        esac
    done
    need python3 python3
    need timeout coreutils
    need setsid util-linux
    need ss iproute2
    if [ ${#missing[@]} -gt 0 ]; then
        echo "compare.sh: missing ${missing[*]}. Install with:" >&2
        echo "  apt-get update && apt-get install -y --no-install-recommends $(printf '%s\n' "${pkgs[@]}" | sort -u | paste -sd' ' -)" >&2
        exit 1
    fi
    [ -x "$STREAMGATE_BIN" ] || die "no streamgate binary at $STREAMGATE_BIN: run 'cargo build --release' first (or set STREAMGATE_BIN)"
    [ -x "$BENCH_BIN" ] || die "no load tool at $BENCH_BIN (set BENCH_BIN)"
    "$BENCH_BIN" bench --help 2>/dev/null | grep -q 'several processes' ||
        die "$BENCH_BIN bench cannot sum several server processes (--pid A,B): rebuild it with 'cargo build --release'"
}

ports_free() {
    local port busy=()
    for port in "$@"; do
        if ss -Htln "sport = :$port" | grep -q .; then busy+=("$port"); fi
    done
    [ ${#busy[@]} -eq 0 ] || die "ports ${busy[*]} on this machine are in use; stop what listens there first"
}

# ---------------------------------------------------------------- processes -----------

# Process groups this script started (one per server or backend), killed on exit.
GROUPS_STARTED=()

start_group() { # LOGFILE COMMAND...: starts COMMAND in a new session; sets STARTED_PID
    local log=$1; shift
    setsid "$@" >"$log" 2>&1 </dev/null &
    STARTED_PID=$!
    GROUPS_STARTED+=("$STARTED_PID")
}

stop_group() { # PGID: TERM the group, then KILL whatever is left after 10 s
    local pgid=$1 i
    kill -TERM -- "-$pgid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 -- "-$pgid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    wait "$pgid" 2>/dev/null || true
    local kept=()
    for i in "${GROUPS_STARTED[@]}"; do [ "$i" = "$pgid" ] || kept+=("$i"); done
    GROUPS_STARTED=("${kept[@]}")
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local g
    for g in "${GROUPS_STARTED[@]}"; do stop_group "$g"; done
    if [ -n "${RUN_DIR:-}" ]; then say "run files kept in $RUN_DIR"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

wait_port() { # PORT SECONDS PID: until something accepts on 127.0.0.1:PORT
    local port=$1 secs=$2 pid=$3 i
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Sets SERVER_PGID (to stop it) and SERVER_PIDS (comma-separated, for --pid), plus the
# URLs and publish format of the server.
start_server() { # NAME DIR
    local name=$1 dir=$2
    mkdir -p "$dir"
    case $name in
        streamgate)
            ports_free "$SG_PORT"
            # The server reads STREAMGATE_* variables as configuration: this script's own are not.
            start_group "$dir/server.log" env -u STREAMGATE_BIN RUST_LOG=warn "$RUN_DIR/bin/streamgate" serve \
                --listen "127.0.0.1:$SG_PORT"
            SERVER_PGID=$STARTED_PID
            wait_port "$SG_PORT" 20 "$SERVER_PGID" || server_failed "$name" "$dir/server.log"
            SERVER_PIDS=$SERVER_PGID
            SUBSCRIBE_URL="http://127.0.0.1:$SG_PORT/sse?channels=bench"
            PUBLISH_URL="http://127.0.0.1:$SG_PORT/channels/bench/messages"
            PUBLISH_BODY='{"data":"{payload}"}'
            PUBLISH_HEADER='Content-Type: application/json'
            ;;
        nchan)
            ports_free "$NCHAN_PORT"
            mkdir -p "$dir/logs" "$dir/tmp"
            sed -e "s|@PORT@|$NCHAN_PORT|g" -e "s|@NCHAN_MODULE@|$NCHAN_MODULE|g" \
                "$HERE/nchan/nginx.conf" >"$dir/nginx.conf"
            start_group "$dir/server.log" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
            SERVER_PGID=$STARTED_PID
            wait_port "$NCHAN_PORT" 20 "$SERVER_PGID" || server_failed "$name" "$dir/logs/error.log"
            local workers
            workers=$(pgrep -P "$SERVER_PGID" | paste -sd, - || true)
            [ -n "$workers" ] || server_failed "$name" "$dir/logs/error.log"
            SERVER_PIDS="$SERVER_PGID,$workers"
            SUBSCRIBE_URL="http://127.0.0.1:$NCHAN_PORT/sub"
            PUBLISH_URL="http://127.0.0.1:$NCHAN_PORT/pub"
            PUBLISH_BODY='{payload}'
            PUBLISH_HEADER='Content-Type: text/plain'
            ;;
        pushpin)
            ports_free "$PUSHPIN_PORT" "$BACKEND_PORT" "$PUSHPIN_PUBLISH_PORT" $PUSHPIN_OTHER_PORTS
            mkdir -p "$dir/run" "$dir/log"
            local other=($PUSHPIN_OTHER_PORTS)
            sed -e "s|@PORT@|$PUSHPIN_PORT|g" -e "s|@RUNDIR@|$dir/run|g" -e "s|@LOGDIR@|$dir/log|g" \
                -e "s|@PUBLISH_PORT@|$PUSHPIN_PUBLISH_PORT|g" -e "s|@ZMQ_PULL_PORT@|${other[0]}|g" \
                -e "s|@ZMQ_SUB_PORT@|${other[1]}|g" -e "s|@COMMAND_PORT@|${other[2]}|g" \
                "$HERE/pushpin/pushpin.conf" >"$dir/pushpin.conf"
            sed -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" "$HERE/pushpin/routes" >"$dir/routes"
            start_group "$dir/backend.log" python3 "$HERE/pushpin/grip_backend.py" "$BACKEND_PORT"
            BACKEND_PGID=$STARTED_PID
            wait_port "$BACKEND_PORT" 20 "$BACKEND_PGID" || server_failed "pushpin's backend" "$dir/backend.log"
            start_group "$dir/server.log" pushpin --config "$dir/pushpin.conf"
            SERVER_PGID=$STARTED_PID
            wait_port "$PUSHPIN_PORT" 30 "$SERVER_PGID" || server_failed "$name" "$dir/server.log"
            wait_port "$PUSHPIN_PUBLISH_PORT" 30 "$SERVER_PGID" || server_failed "$name" "$dir/server.log"
            local children i
            for i in $(seq 1 50); do
                children=$(pgrep -P "$SERVER_PGID" | paste -sd, - || true)
                [ "$(echo "$children" | tr ',' '\n' | grep -c .)" -ge 4 ] && break
                sleep 0.1
            done
            [ "$(echo "$children" | tr ',' '\n' | grep -c .)" -ge 4 ] ||
                server_failed "$name (expected condure, zurl, pushpin-proxy, pushpin-handler)" "$dir/server.log"
            # The runner and all its services; the backend is the application, not Pushpin.
            SERVER_PIDS="$SERVER_PGID,$children"
            SUBSCRIBE_URL="http://127.0.0.1:$PUSHPIN_PORT/sse"
            PUBLISH_URL="http://127.0.0.1:$PUSHPIN_PUBLISH_PORT/publish/"
            PUBLISH_BODY='{"items":[{"channel":"bench","formats":{"http-stream":{"content":"data: {payload}\n\n"}}}]}'
            PUBLISH_HEADER='Content-Type: application/json'
            ;;
    esac
    # Let the processes finish starting before their memory is read.
    sleep 1
}

server_failed() { # WHAT LOG
    echo "compare.sh: $1 did not start; the end of $2:" >&2
    tail -n 20 "$2" >&2 2>/dev/null || true
    exit 1
}

stop_server() {
    stop_group "$SERVER_PGID"
    if [ -n "${BACKEND_PGID:-}" ]; then stop_group "$BACKEND_PGID"; BACKEND_PGID=""; fi
    # Let the kernel release the closed connections before the next server starts.
    sleep 1
}

# ---------------------------------------------------------------- load ----------------

# bench OUT_JSON TIMEOUT_SECS ARGS...: one `streamgate bench` run against the current
# server; the JSON report goes to OUT_JSON, the table and progress to OUT_JSON's .log.
bench() {
    local out=$1 secs=$2; shift 2
    local status=0
    timeout --kill-after=10 $((secs + 30)) "$RUN_DIR/bin/bench" bench \
        --subscribe-url "$SUBSCRIBE_URL" --publish-url "$PUBLISH_URL" \
        --publish-body "$PUBLISH_BODY" --publish-header "$PUBLISH_HEADER" \
        --connect-window "$CONNECT_WINDOW" --pid "$SERVER_PIDS" --timeout-secs "$secs" \
        --publish-concurrency "$PUBLISH_CONCURRENCY" \
        --json "$@" >"$out" 2>"${out%.json}.log" || status=$?
    case $status in
        0) ;;
        2) say "  timed out after ${secs}s: partial figures (see ${out%.json}.log)" ;;
        *) say "  the load tool failed (exit $status): $(tail -n 3 "${out%.json}.log" | tr '\n' ' ')" ;;
    esac
    [ -s "$out" ] || echo '{}' >"$out"
    python3 "$HERE/report.py" line "$out" >&2 || true
}

preflight() { # NAME: one subscriber must receive three messages, or nothing else is worth running
    local name=$1 dir=$RUN_DIR/preflight/$1
    say "$name: preflight"
    start_server "$name" "$dir"
    bench "$dir/check.json" 30 --subscribers 1 --messages 3 --rate 10 --settle-ms 3000
    stop_server
    python3 "$HERE/report.py" verdict "$dir/check.json" 10 >/dev/null ||
        die "$name does not deliver what is published to it (see $dir); check its configuration"
}

scenario_idle() { # NAME DIR
    local name=$1 dir=$2/$1
    say "$name: $IDLE_SUBS idle subscribers"
    start_server "$name" "$dir/idle"
    bench "$dir/idle.json" 180 --subscribers "$IDLE_SUBS" --messages 0 --hold-secs "$IDLE_HOLD" \
        --source-addrs "$SOURCE_ADDRS"
    stop_server
}

scenario_fanout() { # NAME DIR
    local name=$1 dir=$2/$1 rate missed=0
    say "$name: $FANOUT_SUBS subscribers, offered rates $FANOUT_RATES msg/s"
    start_server "$name" "$dir/fanout"
    for rate in $FANOUT_RATES; do
        bench "$dir/fanout-$rate.json" 120 --subscribers "$FANOUT_SUBS" \
            --messages $((rate * STEP_SECS)) --rate "$rate" --settle-ms 3000
        if python3 "$HERE/report.py" verdict "$dir/fanout-$rate.json" "$rate" >&2; then
            missed=0
        else
            missed=$((missed + 1))
            say "  $name does not keep up with $rate msg/s ($missed in a row)"
            [ "$missed" -lt "$FANOUT_MISSES" ] || break
        fi
        sleep 1
    done
    stop_server
}

scenario_latency() { # NAME DIR
    local name=$1 dir=$2/$1
    say "$name: $LATENCY_SUBS subscribers, 1 msg/s"
    start_server "$name" "$dir/latency"
    bench "$dir/latency.json" 180 --subscribers "$LATENCY_SUBS" --messages "$LATENCY_MESSAGES" \
        --rate 1 --settle-ms 5000 --source-addrs "$SOURCE_ADDRS"
    stop_server
}

# ---------------------------------------------------------------- main ----------------

check_needs
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((IDLE_SUBS + 1000)) ] ||
    die "the open-file limit ($(ulimit -n)) is too low for $IDLE_SUBS connections in one server"

if [ -n "$OUT" ]; then mkdir -p "$OUT"; RUN_DIR=$(cd "$OUT" && pwd); else RUN_DIR=$(mktemp -d /tmp/streamgate-compare.XXXXXX); fi
mkdir -p "$RUN_DIR/bin"
cp "$STREAMGATE_BIN" "$RUN_DIR/bin/streamgate"
cp "$BENCH_BIN" "$RUN_DIR/bin/bench"
say "run directory $RUN_DIR"

# What was measured, for the report.
sg_commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- src ':!src/bench' Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    sg_commit="$sg_commit + uncommitted changes"
fi
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
python3 - "$RUN_DIR/meta.json" <<EOF
import json, os, platform, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
osname = next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release") if l.startswith("PRETTY_NAME")), "Linux")
json.dump({
    "date": "$(date -u +%Y-%m-%d)",
    "machine": f"{os.cpu_count()} vCPU ({cpu}), {mem / 1048576:.0f} GiB, {osname}, Linux {platform.release()}",
    "versions": {
        "nchan": "nginx $(ver nginx) + libnginx-mod-nchan $(ver libnginx-mod-nchan) (Debian), 1 worker",
        "pushpin": "pushpin $(ver pushpin) with condure $(ver condure) and zurl $(ver zurl) (Debian)",
        "streamgate": "streamgate $sg_commit, release build of $(date -u -r "$STREAMGATE_BIN" '+%Y-%m-%d %H:%M') UTC",
    },
    "params": {
        "idle_subscribers": $IDLE_SUBS, "idle_hold_secs": $IDLE_HOLD,
        "fanout_subscribers": $FANOUT_SUBS, "fanout_rates": "$FANOUT_RATES".split(),
        "step_secs": $STEP_SECS, "latency_subscribers": $LATENCY_SUBS,
        "latency_messages": $LATENCY_MESSAGES, "source_addrs": $SOURCE_ADDRS,
        "connect_window": $CONNECT_WINDOW, "quick": bool($QUICK),
        "publish_concurrency": $PUBLISH_CONCURRENCY, "fanout_misses": $FANOUT_MISSES,
        "scenarios": "$SCENARIOS".split(),
    },
    "servers": "$SERVERS".split(),
    "runs": $RUNS,
}, open(sys.argv[1], "w"), indent=1)
EOF

started=$(date +%s)
for s in $SERVERS; do preflight "$s"; done
for run in $(seq 1 "$RUNS"); do
    for scenario in idle fanout latency; do
        runs_scenario "$scenario" || continue
        for s in $SERVERS; do "scenario_$scenario" "$s" "$RUN_DIR/run$run"; done
    done
done
say "measured in $(( $(date +%s) - started )) s"

render=(python3 "$HERE/report.py" render "$RUN_DIR")
if [ "$DOCS" = 1 ]; then
    command="bench/compare.sh"
    [ "$RUNS" = 1 ] || command="$command --runs $RUNS"
    render+=(--doc "$ROOT/docs/BENCHMARKS.md" --svg "$ROOT/docs/img/compare.svg" --command "$command")
else
    render+=(--svg "$RUN_DIR/compare.svg")
fi
"${render[@]}"
