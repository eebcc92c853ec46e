#!/usr/bin/env bash
# Vigil benchmark driver: vigild against the physical limit (a counting C
# subscriber, a minimal C relay), the original Python design, Node-RED and
# Mosquitto's own WebSocket listener — same broker build, same machine, same
# run; results as ratios. See docs/BENCHMARKS.md.
#
#   bench/run.sh            full run (about 20 min)
#   bench/run.sh --quick    scaled down (≤ 5 min)
#   bench/run.sh --no-install   do not apt-get/npm anything
#
# Writes bench/results/latest.json (full runs; quick runs go to
# bench/out/quick.json), docs/img/bench-*.png and the generated section of
# docs/BENCHMARKS.md. Only processes it starts are stopped, by PID.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(dirname "$HERE")"
BUILD="${VIGIL_BENCH_BUILD:-$SRC/build-bench}"
NODE_RED_VERSION=4.1.8
QUICK=0
INSTALL=1
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "unknown option: $a" >&2; exit 2 ;;
  esac
done

step() { printf '\n== %s\n' "$*"; }

if [ "$INSTALL" = 1 ]; then
  step "tools: gnuplot (Debian), Node-RED $NODE_RED_VERSION (npm, into bench/.cache)"
  if ! command -v gnuplot >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y gnuplot-nox >/dev/null \
      || echo "gnuplot-nox could not be installed: plots will be skipped"
  fi
  NR="$HERE/.cache/nodered"
  if [ ! -f "$NR/node_modules/node-red/package.json" ] \
     || ! grep -q "\"version\": \"$NODE_RED_VERSION\"" "$NR/node_modules/node-red/package.json"; then
    mkdir -p "$NR"
    timeout 300 npm install --no-audit --no-fund --prefix "$NR" "node-red@$NODE_RED_VERSION" >"$HERE/.cache/npm.log" 2>&1 \
      || echo "Node-RED could not be installed (see bench/.cache/npm.log): it will be skipped"
  fi
fi
command -v mosquitto >/dev/null || { echo "mosquitto not found (apt-get install mosquitto)" >&2; exit 1; }

step "build (Release) in $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target vigild vigil-bench vigil-bench-alarm >/dev/null

OUT="$SRC/bench/out/run-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
if [ "$QUICK" = 1 ]; then
  RESULTS="$SRC/bench/out/quick.json"
  step "quick run (logs in $OUT)"
  timeout 300 /usr/bin/python3 "$HERE/orchestrate.py" --build "$BUILD" --out "$OUT" --results "$RESULTS" --quick
  /usr/bin/python3 "$HERE/report.py" "$RESULTS" "$OUT/BENCHMARKS-quick.md" >/dev/null
  echo "quick results: $RESULTS, $OUT/BENCHMARKS-quick.md"
else
  RESULTS="$HERE/results/latest.json"
  step "full run (logs in $OUT)"
  timeout 1500 /usr/bin/python3 "$HERE/orchestrate.py" --build "$BUILD" --out "$OUT" --results "$RESULTS"
  step "report: docs/BENCHMARKS.md, docs/img/bench-*.png"
  /usr/bin/python3 "$HERE/report.py" "$RESULTS" "$SRC/docs/BENCHMARKS.md"
fi
# Scratch databases are deleted per measurement; keep only the logs.
find "$OUT" -name '*.db*' -delete 2>/dev/null || true
