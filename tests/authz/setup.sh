#!/usr/bin/env bash
# Installs what tests/it/authz.rs asks hookgate's authz listener with: Envoy's API types built from
# Envoy's own proto definitions (envoy-data-plane) and grpclib, in the virtualenv at .venv/
# (ignored by git). Safe to run again; pip only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/authz/requirements.txt

# Fail here, not in the test, when an install did not take.
.venv/bin/python -c "import grpclib, envoy_data_plane.envoy.service.auth.v3"
echo "authz gRPC client ready: envoy-data-plane and grpclib in .venv/"
