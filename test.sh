#!/usr/bin/env bash
# Every test, as CI runs it: installs what the tests need and is missing (redis-server, for
# the many-node tests), then formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "test.sh: installing redis-server (the many-node tests start their own)" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --release "$@"
