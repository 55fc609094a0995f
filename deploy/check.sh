#!/usr/bin/env bash
# Checks everything in deploy/ with real tools, installing them first when missing:
#   1. Prometheus rules: `promtool check rules` and the unit tests in alerts_test.yaml
#      (promtool from Debian's `prometheus` package);
#   2. Kubernetes manifests: strict validation against the official JSON schemas, offline
#      (PyPI `kubernetes-validate`, which ships the schemas, in .venv/);
#   3. the Dockerfile's build and run commands against the README, and the manifests, dashboard
#      and alerts against each other (check_deploy.py);
#   4. `hookgate check` on every config shipped in deploy/ (check_configs.py).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0

if ! command -v promtool >/dev/null; then
    echo "== installing promtool (Debian package prometheus)"
    # The package starts a service on install; keep it from doing so.
    restore_policy=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        restore_policy=true
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
    if $restore_policy; then rm -f /usr/sbin/policy-rc.d; fi
fi

if ! .venv/bin/kubernetes-validate --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE_VERSION"; then
    echo "== installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

echo "== promtool: alert rules and their unit tests"
promtool check rules deploy/prometheus/alerts.yaml
promtool test rules deploy/prometheus/alerts_test.yaml

echo "== kubernetes-validate --strict: manifests"
.venv/bin/kubernetes-validate --strict deploy/k8s/*.yaml

echo "== Dockerfile and README, manifests, dashboard"
.venv/bin/python deploy/check_deploy.py

echo "== hookgate check on every config in deploy/"
cargo build --quiet --bin hookgate
.venv/bin/python deploy/check_configs.py target/debug/hookgate
