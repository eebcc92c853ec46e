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
#   VIGIL_STORE=postgres: a private PostgreSQL cluster in the run folder
#   (scripts/pg-local.sh; VIGIL_PG_PORT, 5433) instead of the SQLite file;
#   VIGIL_INSTANCES=N (with postgres): N vigild on the same broker and
#   database, on HTTP ports VIGIL_HTTP_PORT .. +N-1 (docs/ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MQTT_PORT=${VIGIL_MQTT_PORT:-1883}
HTTP_PORT=${VIGIL_HTTP_PORT:-8080}
DEVICES=${VIGIL_DEVICES:-50}
RATE=${VIGIL_RATE:-1}
DURATION=${VIGIL_DURATION:-86400}
RUN=${VIGIL_RUN_DIR:-$ROOT/run}
STORE=${VIGIL_STORE:-sqlite}
INSTANCES=${VIGIL_INSTANCES:-1}
PG_PORT=${VIGIL_PG_PORT:-5433}
case "$STORE" in sqlite|postgres) ;; *) echo "run: VIGIL_STORE is sqlite or postgres" >&2; exit 1 ;; esac
if ! [[ "$INSTANCES" =~ ^[1-9]$ ]] || { [ "$INSTANCES" -gt 1 ] && [ "$STORE" != postgres ]; }; then
  echo "run: VIGIL_INSTANCES is 1..9, and more than 1 needs VIGIL_STORE=postgres" >&2; exit 1
fi
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
PORTS=("$MQTT_PORT")
for ((i=0; i<INSTANCES; i++)); do PORTS+=($((HTTP_PORT + i))); done
[ "$STORE" = postgres ] && PORTS+=("$PG_PORT")
for p in "${PORTS[@]}"; do
  if port_busy "$p"; then
    echo "run: port $p on 127.0.0.1 is in use; set VIGIL_MQTT_PORT / VIGIL_HTTP_PORT / VIGIL_PG_PORT" >&2
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

DB=$RUN/vigil.db
if [ "$STORE" = postgres ]; then
  source scripts/pg-local.sh
  pg_local_start "$RUN/pg" "$PG_PORT"
  PIDS+=("$PG_PID")   # stopped after every vigild (reverse order)
  DB=$PG_URL          # the password stays in $RUN/pg/pgpass, never on a command line
fi

# The login: user admin, password VIGIL_ADMIN_PASSWORD or a fresh one (stdin, never argv).
ADMIN_PW=${VIGIL_ADMIN_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
ADMIN_VERB=(add admin --role admin)
build/server/vigild user list --db "$DB" | grep -q '^admin ' && ADMIN_VERB=(passwd admin)
printf '%s\n' "$ADMIN_PW" | build/server/vigild user "${ADMIN_VERB[@]}" --db "$DB"

DASH=""
for ((i=0; i<INSTANCES; i++)); do
  port=$((HTTP_PORT + i)) cid=vigild log=$RUN/vigild.log
  [ "$INSTANCES" -gt 1 ] && cid=vigild-$((i + 1)) log=$RUN/vigild-$((i + 1)).log
  VIGILD_ARGS=(--broker "$BROKER_URL" --listen "127.0.0.1:$port" --db "$DB" --client-id "$cid" "${VIGILD_TLS[@]}")
  [ -n "$WEB_ROOT" ] && VIGILD_ARGS+=(--web-root "$WEB_ROOT")
  build/server/vigild "${VIGILD_ARGS[@]}" 2> >(tee -a "$log" >&2) &
  PIDS+=($!)
  for _ in $(seq 1 50); do port_busy "$port" && break; sleep 0.1; done
  DASH+="${DASH:+, }${WEB_SCHEME:-http}://127.0.0.1:$port/"
done
STORE_LINE="SQLite $RUN/vigil.db"
[ "$STORE" = postgres ] && STORE_LINE="PostgreSQL 127.0.0.1:$PG_PORT (private cluster in $RUN/pg; $INSTANCES vigild)"

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
    Dashboard:  $DASH   login: admin / $ADMIN_PW
    API:        ${WEB_SCHEME:-http}://127.0.0.1:$HTTP_PORT/api/devices   metrics: /metrics   health: /healthz
                (API tokens: build/server/vigild token add NAME --role viewer --db "$DB")
    Store:      $STORE_LINE
    Broker:     $BROKER_URL
    Fleet:      $FLEET
  Ctrl-C stops everything.

MSG
wait -n "${PIDS[@]}" || true
echo "run: a component exited; see $RUN/*.log" >&2
