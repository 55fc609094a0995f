#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server for tests/it/redis*.rs, which start their own instances on free loopback ports
# (Sentinel as `redis-server --sentinel`), and redis-cli (redis-tools, which redis-server depends
# on) that makes the Cluster of tests/it/redis_cluster.rs. The package starts a system service on
# install: stop that one.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "== installing redis-server"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
    if pid=$(pgrep -x redis-server); then
        kill $pid || true
    fi
fi

# Debian's chromium, headless, and its WebDriver for the console's browser test
# (tests/it/console.rs runs tests/console/browser_test.py).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "== installing chromium and chromium-driver"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

# The official webhook SDKs that tests/it/interop.rs signs and verifies with.
bash tests/interop/setup.sh
# Selenium for the browser test.
bash tests/console/setup.sh
# Envoy's ext_authz client (envoy-data-plane, grpclib) for tests/it/authz.rs.
bash tests/authz/setup.sh

cargo test --all-targets
