# pg-local.sh — a private PostgreSQL cluster for scripts/run.sh (sourced):
# initdb into a folder of the run, owned by an unprivileged user (initdb and
# postgres refuse root), listening on loopback only, with a generated
# password kept in a 0600 password file (never on a command line, never in
# the URL). Debian 12's postgresql package (scripts/deps.sh) provides it.
#
#   pg_local_start DIR PORT   sets PG_URL (postgresql://… with passfile=) and PG_PID
#   pg_local_stop             fast shutdown of the cluster started here, by PID
#
# The cluster is kept between runs (DIR/data); a second start reuses it.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_PID=""

pg__as() {
  # Run a command as the cluster's owner (postgres when root, else
  # ourselves); setpriv execs, so $! is the server's own PID.
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid="$PG_OWNER" --regid="$(id -g "$PG_OWNER")" --init-groups -- "$@"
  else "$@"; fi
}

pg_local_start() {
  local dir=$1 port=$2
  [ -x "$PG_BIN/initdb" ] || { echo "pg-local: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; return 1; }
  PG_OWNER=$(id -un)
  if [ "$(id -u)" -eq 0 ]; then
    PG_OWNER=postgres
    id "$PG_OWNER" >/dev/null 2>&1 || PG_OWNER=nobody
  fi
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$PG_OWNER" "$dir"
  chmod 700 "$dir"
  local pw_file=$dir/superuser.pw
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    # The superuser 'vigil' with a generated password, SCRAM on TCP.
    (umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' > "$pw_file")
    [ "$(id -u)" -eq 0 ] && chown "$PG_OWNER" "$pw_file"
    pg__as "$PG_BIN/initdb" -D "$dir/data" -U vigil --pwfile="$pw_file" -A scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { echo "pg-local: initdb failed, see $dir/initdb.log" >&2; return 1; }
  fi
  # The client side's password file (libpq format), readable by us only.
  (umask 077; printf '127.0.0.1:%s:*:vigil:%s\n' "$port" "$(cat "$pw_file")" > "$dir/pgpass")
  local srv=("$PG_BIN/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1
             -c unix_socket_directories="$dir" -c max_connections=200)
  # Started directly (not through a function, which would fork a subshell),
  # so PG_PID is the server's own PID.
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid="$PG_OWNER" --regid="$(id -g "$PG_OWNER")" --init-groups -- "${srv[@]}" >>"$dir/postgres.log" 2>&1 &
  else
    "${srv[@]}" >>"$dir/postgres.log" 2>&1 &
  fi
  PG_PID=$!
  local i
  for i in $(seq 1 100); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    kill -0 "$PG_PID" 2>/dev/null || { echo "pg-local: postgres exited, see $dir/postgres.log" >&2; return 1; }
    sleep 0.1
  done
  PG_URL="postgresql://vigil@127.0.0.1:$port/vigil?passfile=$dir/pgpass&connect_timeout=5"
  PGPASSFILE=$dir/pgpass "$PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U vigil -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'vigil'" | grep -q 1 ||
    PGPASSFILE=$dir/pgpass "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U vigil vigil
}

pg_local_stop() {
  [ -n "$PG_PID" ] || return 0
  kill -INT "$PG_PID" 2>/dev/null || true   # fast shutdown
  local i
  for i in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PG_PID" 2>/dev/null || true
  PG_PID=""
}
