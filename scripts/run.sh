#!/usr/bin/env bash
# Installs what is missing, builds, and runs Vigil on this machine:
# a Mosquitto of our own on loopback (deploy/mosquitto/vigil.conf), vigild on
# an SQLite file, a simulated fleet (vigil-sim) and the dashboard.
# Ctrl-C stops everything this script started. Idempotent; Debian 12, root.
#
# Environment: VIGIL_MQTT_PORT (1883), VIGIL_HTTP_PORT (8080),
#   VIGIL_DEVICES (50), VIGIL_RATE (1 Hz), VIGIL_DURATION (86400 s),
#   VIGIL_RUN_DIR (./run: broker persistence, database, logs),
#   VIGIL_TLS=1: broker on TLS with client certificates, vigild on HTTPS
#   (scripts/tls-demo.sh).
#   VIGIL_ADMIN_PASSWORD (the dashboard login 'admin'; default: a fresh one each run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MQTT_PORT=${VIGIL_MQTT_PORT:-1883}
HTTP_PORT=${VIGIL_HTTP_PORT:-8080}
DEVICES=${VIGIL_DEVICES:-50}
RATE=${VIGIL_RATE:-1}
DURATION=${VIGIL_DURATION:-86400}
RUN=${VIGIL_RUN_DIR:-$ROOT/run}
JOBS=$(nproc 2>/dev/null || echo 2)

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"

WEB_ROOT=""
if [ -f web/package.json ]; then
  # Rebuild the dashboard only when its sources are newer than the build.
  if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html web/package.json -newer web/dist/index.html -print -quit 2>/dev/null)" ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)
  fi
  WEB_ROOT=$ROOT/web/dist
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$MQTT_PORT" "$HTTP_PORT"; do
  if port_busy "$p"; then
    echo "run: port $p on 127.0.0.1 is in use; set VIGIL_MQTT_PORT / VIGIL_HTTP_PORT" >&2
    exit 1
  fi
done

mkdir -p "$RUN/mosquitto"
# The project's broker config, with this run's port and persistence folder.
grep -vE '^(listener|persistence_location|log_dest)' deploy/mosquitto/vigil.conf > "$RUN/mosquitto.conf"
cat >> "$RUN/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
persistence_location $RUN/mosquitto/
log_dest file $RUN/mosquitto.log
CONF
# Started as root, Mosquitto drops to its own user: let it write its files.
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then
  touch "$RUN/mosquitto.log"
  chown mosquitto: "$RUN/mosquitto" "$RUN/mosquitto.log"
fi
BROKER_URL="mqtt://127.0.0.1:$MQTT_PORT" VIGILD_TLS=() SIM_TLS=()
[ "${VIGIL_TLS:-0}" = 1 ] && source scripts/tls-demo.sh

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "run: stopping"
  # Reverse order: the fleet, then vigild (flushes its store), then the broker.
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[i]}" 2>/dev/null || true
  done
  echo "run: stopped"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

mosquitto -c "$RUN/mosquitto.conf" &
PIDS+=($!)
for _ in $(seq 1 50); do port_busy "$MQTT_PORT" && break; sleep 0.1; done

# The login: user admin, password VIGIL_ADMIN_PASSWORD or a fresh one (stdin, never argv).
ADMIN_PW=${VIGIL_ADMIN_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
ADMIN_VERB=(add admin --role admin)
build/server/vigild user list --db "$RUN/vigil.db" | grep -q '^admin ' && ADMIN_VERB=(passwd admin)
printf '%s\n' "$ADMIN_PW" | build/server/vigild user "${ADMIN_VERB[@]}" --db "$RUN/vigil.db"

VIGILD_ARGS=(--broker "$BROKER_URL" --listen "127.0.0.1:$HTTP_PORT" --db "$RUN/vigil.db" "${VIGILD_TLS[@]}")
[ -n "$WEB_ROOT" ] && VIGILD_ARGS+=(--web-root "$WEB_ROOT")
build/server/vigild "${VIGILD_ARGS[@]}" 2> >(tee -a "$RUN/vigild.log" >&2) &
PIDS+=($!)
for _ in $(seq 1 50); do port_busy "$HTTP_PORT" && break; sleep 0.1; done

if [ -x build/sim/vigil-sim ]; then
  build/sim/vigil-sim --broker "$BROKER_URL" "${SIM_TLS[@]}" --devices "$DEVICES" \
    --rate "$RATE" --duration "$DURATION" 2>>"$RUN/vigil-sim.log" &
  PIDS+=($!)
  FLEET="$DEVICES simulated devices at $RATE Hz (log: $RUN/vigil-sim.log)"
else
  FLEET="no simulator built"
fi

cat <<MSG

  Vigil is running.
    Dashboard:  ${WEB_SCHEME:-http}://127.0.0.1:$HTTP_PORT/   login: admin / $ADMIN_PW
    API:        ${WEB_SCHEME:-http}://127.0.0.1:$HTTP_PORT/api/devices   metrics: /metrics   health: /healthz
                (API tokens: build/server/vigild token add NAME --role viewer --db $RUN/vigil.db)
    Broker:     $BROKER_URL
    Fleet:      $FLEET
  Ctrl-C stops everything.

MSG
wait -n "${PIDS[@]}" || true
echo "run: a component exited; see $RUN/*.log" >&2
