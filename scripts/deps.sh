#!/usr/bin/env bash
# Installs what Vigil needs to build, run and test on Debian 12, as root.
# Idempotent: installs only what is missing, so a second run costs ~1 s.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libmosquitto-dev libwebsockets-dev libcjson-dev libsqlite3-dev libcmocka-dev libpq-dev libsodium-dev
  mosquitto mosquitto-clients sqlite3 postgresql
  python3 python3-paho-mqtt python3-websockets
  chromium
  gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
  curl ca-certificates openssl procps
)

# Node.js: keep the one the machine has (it may come with its own npm);
# otherwise take Debian's.
command -v node >/dev/null && command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The system broker service is not ours: the project starts its own Mosquitto
# on loopback with deploy/mosquitto configs. Leave the packaged service alone.
# Likewise the packaged PostgreSQL cluster: the store tests run a private one
# (tests/support/pg_cluster.py) on a free loopback port.
