#!/usr/bin/env bash
# Installs the official webhook SDKs that tests/it/interop.rs signs and verifies with:
# Python packages in a virtualenv at .venv/ and npm packages in tests/interop/node_modules
# (both ignored by git). Safe to run again; it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
(cd tests/interop && npm install --no-audit --no-fund --no-package-lock --loglevel=error)

# Fail here, not in the test, when an install did not take.
.venv/bin/python -c "import standardwebhooks, svix, stripe, slack_sdk"
(cd tests/interop && node -e "import('@octokit/webhooks-methods').then(m => m.sign('s', 'p'))")
echo "interop SDKs ready: .venv/ and tests/interop/node_modules"
