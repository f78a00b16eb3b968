#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
# dockerd is the oracle of the differential tests and the peer of the `docker load` round trips; it
# starts (it may first clean up after an unclean stop) while npm installs
bash scripts/start-dockerd.sh & dockerd_start=$!
npm ci --no-audit --no-fund
wait "$dockerd_start" || echo "warning: dockerd did not start; the Docker tests will fail (TSBUILD_TEST_NO_DOCKER=1 skips them)" >&2
npm test
