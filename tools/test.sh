#!/usr/bin/env bash
# Install everything the tests need (Python packages and Debian's chromium for the browser test), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
python -m pip install -q -r tests/requirements.txt
python -m pytest -q "$@"
