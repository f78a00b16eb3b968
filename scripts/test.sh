#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund
# dockerd is the oracle of the differential tests and the peer of the `docker load` round trips
bash scripts/start-dockerd.sh || echo "warning: dockerd did not start; Docker round-trip tests will fail" >&2
npm test
