#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

# The official webhook SDKs that tests/interop.rs signs and verifies with.
bash tests/interop/setup.sh

cargo test --all-targets
