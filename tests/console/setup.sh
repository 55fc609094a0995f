#!/usr/bin/env bash
# Installs what tests/console/browser_test.py needs besides chromium and chromium-driver (apt,
# installed by scripts/test.sh): Selenium in the virtualenv at .venv/ (ignored by git). Safe to
# run again; pip only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/console/requirements.txt

# Fail here, not in the test, when an install did not take.
.venv/bin/python -c "import selenium"
for tool in chromium chromedriver; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install chromium chromium-driver" >&2; exit 1; }
done
echo "browser test ready: selenium in .venv/, $(chromium --version 2>/dev/null | head -n1)"
