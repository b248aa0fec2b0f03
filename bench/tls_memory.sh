#!/bin/sh
# Memory per idle SSE stream and CPU per delivery: plain HTTP/1.1, HTTP/1.1 over TLS, and
# HTTP/2 over TLS with 100 streams and with one stream per connection. A fresh server for
# each; a CA and certificate of the run's own (openssl). Figures in docs/BENCHMARKS.md,
# "TLS and HTTP/2".
#   bench/tls_memory.sh [SUBSCRIBERS]      (after cargo build --release)
set -eu
BIN=${BIN:-./target/release/streamgate}
N=${1:-10000}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
  -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
  -out leaf.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem \
  -days 2 -extfile ext.cnf 2>/dev/null
printf '[server]\ntls_cert_file = "%s/cert.pem"\ntls_key_file = "%s/key.pem"\n' "$DIR" "$DIR" > tls.toml
: > plain.toml
cd - > /dev/null

run() { # name config scheme [bench flags]
  name=$1 config=$2 scheme=$3
  shift 3
  "$BIN" serve --config "$DIR/$config" --listen 127.0.0.1:18500 > /dev/null 2>&1 &
  pid=$!
  sleep 1
  "$BIN" bench --subscribe-url "$scheme://127.0.0.1:18500/sse?channels=bench" \
    --publish-url "$scheme://127.0.0.1:18500/channels/bench/messages" --tls-ca "$DIR/ca.pem" "$@" \
    --subscribers "$N" --messages 100 --rate 10 --source-addrs 4 --hold-secs 2 --pid "$pid" \
    --json 2>/dev/null | python3 -c "
import json, sys
r = json.load(sys.stdin); s = r['server']; l = r['latency_us']
print('$name: %d connected, %d lost, %.2f KiB per stream, %.2f us per delivery, p50 %.1f ms, p99 %.1f ms'
      % (r['connected'], r['lost'], s['kib_per_connection'], s['cpu_us_per_delivery'], l['p50'] / 1000, l['p99'] / 1000))"
  kill "$pid"
  wait "$pid" 2> /dev/null || true
}
run "plain HTTP/1.1" plain.toml http
run "HTTP/1.1 over TLS" tls.toml https
run "HTTP/2, 100 streams per connection" tls.toml https --h2-streams 100
run "HTTP/2, 1 stream per connection" tls.toml https --h2-streams 1
