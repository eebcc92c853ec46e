#!/usr/bin/env bash
# Dashboard end-to-end: installs web/ deps (npm ci), builds web/dist, runs the
# headless-Chromium e2e against the built vigild (and vigil-sim when present),
# including the resync e2e (npm run e2e runs both files).
#   VIGIL_BUILD_DIR  build tree with server/vigild (default: <repo>/build)
# Needs: node >= 20 + npm, mosquitto, mosquitto_pub/sub, /usr/bin/chromium.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${VIGIL_BUILD_DIR:-$root/build}"
cd "$root/web"
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build
VIGILD="${VIGILD:-$build/server/vigild}" VIGIL_SIM="${VIGIL_SIM:-$build/sim/vigil-sim}" \
  timeout 600 npm run e2e
