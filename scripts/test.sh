#!/usr/bin/env bash
# Installs what is missing, builds, and runs every Vigil test:
#   1. warnings-as-errors build + the whole CTest suite (unit, store, device
#      on the host and on Cortex-M4F / RV32 under QEMU, integration against a
#      real Mosquitto),
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. bounded libFuzzer runs of every parser that sees network or file
#      bytes (clang; FUZZ_TARGETS below),
#   4. the dashboard: vitest unit tests and the end-to-end test in Chromium
#      (its build comes first: the HTTP tests load it).
# Idempotent; run as root on Debian 12. Usage: scripts/test.sh [--quick]
#   --quick  skips the sanitizer and fuzz passes (for a fast local loop).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
JOBS=$(nproc 2>/dev/null || echo 2)

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
bash scripts/deps.sh

step "build (-Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"

# The dashboard is built before the C tests: vigild's HTTP tests check that
# the real dashboard loads under its Content-Security-Policy.
step "dashboard: install and build"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)

step "tests"
ctest --test-dir build --output-on-failure -j2 --timeout 600

if [ "$QUICK" = 0 ]; then
  step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVIGIL_WERROR=ON -DVIGIL_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$JOBS"
  step "tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp \
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 900

  step "fuzz (libFuzzer, bounded)"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DVIGIL_WERROR=ON -DVIGIL_FUZZ=ON >/dev/null
  FUZZ_TARGETS=(
    fuzz_telemetry
    fuzz_json_scan
    fuzz_ack
    fuzz_rest_body
    fuzz_httparg
    fuzz_config
    fuzz_ws_message
    fuzz_auth
    fuzz_alarm_settings
    fuzz_alarm_list
  )
  cmake --build build-fuzz -j"$JOBS" --target "${FUZZ_TARGETS[@]}"
  ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_' 
fi

step "dashboard: unit tests"
(cd web && npm test)
step "dashboard: end-to-end in Chromium"
(cd web && VIGILD="$ROOT/build/server/vigild" VIGIL_SIM="$ROOT/build/sim/vigil-sim" npm run e2e)

step "all tests passed"
