#!/usr/bin/env bash
# Every test, as CI runs it: installs what the tests need and is missing (redis-server for
# the many-node tests, Chromium and playwright-core for the browser tests, Symfony's Mercure
# publisher for the Mercure tests, systemd-analyze for the unit in deploy/), then
# formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"

# Installs Debian packages `$@` (as root, or with sudo).
apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "test.sh: installing redis-server (the many-node tests start their own)" >&2
    apt_install redis-server
fi
# The browser tests drive Debian's Chromium with playwright-core (tests/browser/).
if ! command -v chromium >/dev/null || ! command -v node >/dev/null; then
    echo "test.sh: installing chromium and nodejs (the browser tests drive them)" >&2
    apt_install chromium nodejs npm
fi
# Symfony's Mercure publisher, a real client of the Mercure hub (tests/php/).
if ! command -v php >/dev/null || [ ! -f /usr/share/php/Symfony/Component/Mercure/autoload.php ]; then
    echo "test.sh: installing php-cli and php-symfony-mercure (the Mercure tests publish with them)" >&2
    apt_install php-cli php-symfony-mercure
fi
# systemd-analyze checks deploy/streamgate.service (tests/deploy.rs).
if ! command -v systemd-analyze >/dev/null; then
    echo "test.sh: installing systemd (tests/deploy.rs verifies the unit with systemd-analyze)" >&2
    apt_install systemd
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    echo "test.sh: installing the browser tests' packages (npm ci)" >&2
    npm ci --prefix tests/browser --no-audit --no-fund >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --release "$@"
