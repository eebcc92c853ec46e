#!/usr/bin/env bash
# provision-device.sh — the deployment's certificate authority for Vigil: one
# X.509 client certificate per device (CN = device id = MQTT username = MQTT
# client id at the broker, deploy/mosquitto/vigil-tls.conf), one per service
# (vigild), the broker's server certificate, and the CRL the broker reads.
# openssl CLI only. Private keys are written 0600 and never printed.
#
# usage: provision-device.sh [--ca DIR] VERB ...
#   ca init DIR                  create a CA in DIR (key, self-signed cert, empty CRL)
#   issue ID [--broker-uri URI]  device certificate + its firmware settings
#   issue-service NAME           a service's client certificate (vigild: CN=vigild)
#   issue-broker HOST...         the broker's server certificate; each HOST (DNS
#                                name or IP address) goes in subjectAltName
#   revoke ID|NAME               revoke and regenerate DIR/crl.pem
#   crl                          regenerate DIR/crl.pem (it expires: see VIGIL_CRL_DAYS)
#   list                         every certificate: kind, name, state, expiry, serial
# DIR: --ca, else $VIGIL_CA_DIR, else ./vigil-ca.
# Environment: VIGIL_CERT_DAYS (825), VIGIL_CA_DAYS (3650), VIGIL_CRL_DAYS (30).
#
# Layout of DIR: ca.key ca.pem crl.pem openssl.cnf index.txt serial crlnumber
#   devices/ID.crt ID.key ID.nvs.csv ID.sdkconfig   services/NAME.crt NAME.key
#   broker/broker.crt broker.key
# A CN is unique among the valid certificates of the CA (devices and
# services alike): a device can never be issued "vigild" and get its ACL.
set -euo pipefail
umask 077

CA_DIR=${VIGIL_CA_DIR:-./vigil-ca}
CERT_DAYS=${VIGIL_CERT_DAYS:-825}
CA_DAYS=${VIGIL_CA_DAYS:-3650}
CRL_DAYS=${VIGIL_CRL_DAYS:-30}
# P-256: small, fast, and supported by mbedTLS on the ESP32 and by Mosquitto.
KEY_ALG=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)

die() { echo "provision: $*" >&2; exit 1; }
usage() { sed -n '8,19p' "$0" | sed 's/^# \{0,1\}//'; }

# The device-id rule of docs/PROTOCOL.md (and vigild's): 1..64 of
# [A-Za-z0-9_.-], not "." or "..".
valid_id() {
  [[ $1 =~ ^[A-Za-z0-9_.-]{1,64}$ ]] && [ "$1" != . ] && [ "$1" != .. ]
}

need_ca() {
  [ -f "$CA_DIR/ca.pem" ] && [ -f "$CA_DIR/ca.key" ] && [ -f "$CA_DIR/openssl.cnf" ] ||
    die "no CA in $CA_DIR (run: $0 ca init $CA_DIR)"
}

# The serial of NAME's valid certificate, or nothing.
valid_serial() {
  awk -F'\t' -v cn="/CN=$1" '$1=="V" && $6==cn {print $4}' "$CA_DIR/index.txt"
}

ossl_ca() { openssl ca -config "$CA_DIR/openssl.cnf" -batch "$@"; }

write_cnf() {
  local abs
  abs=$(cd "$CA_DIR" && pwd)
  cat > "$CA_DIR/openssl.cnf" <<CNF
# Written by provision-device.sh; paths are absolute so it works from anywhere.
[ ca ]
default_ca = vigil_ca
[ vigil_ca ]
dir              = $abs
database         = \$dir/index.txt
serial           = \$dir/serial
crlnumber        = \$dir/crlnumber
new_certs_dir    = \$dir/newcerts
certificate      = \$dir/ca.pem
private_key      = \$dir/ca.key
default_md       = sha256
default_days     = $CERT_DAYS
default_crl_days = $CRL_DAYS
unique_subject   = yes
policy           = vigil_policy
copy_extensions  = none
[ vigil_policy ]
commonName = supplied
[ client_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ ca_ext ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
CNF
}

gen_crl() {
  ossl_ca -gencrl -out "$CA_DIR/crl.pem.new" 2>"$CA_DIR/.openssl.err" ||
    { cat "$CA_DIR/.openssl.err" >&2; die "CRL generation failed"; }
  chmod 0644 "$CA_DIR/crl.pem.new"
  mv -f "$CA_DIR/crl.pem.new" "$CA_DIR/crl.pem"
}

cmd_ca_init() {
  [ $# -eq 1 ] || die "usage: ca init DIR"
  CA_DIR=$1
  [ -e "$CA_DIR/ca.key" ] && die "$CA_DIR already holds a CA"
  # Folders 0755 (the broker, running as its own user, reads ca.pem, crl.pem
  # and its certificate); every private key is 0600.
  mkdir -p -m 0755 "$CA_DIR" "$CA_DIR/devices" "$CA_DIR/services" "$CA_DIR/broker"
  mkdir -p "$CA_DIR/newcerts"
  : > "$CA_DIR/index.txt"
  echo 1000 > "$CA_DIR/crlnumber"
  openssl rand -hex 16 > "$CA_DIR/serial"
  write_cnf
  openssl genpkey "${KEY_ALG[@]}" -out "$CA_DIR/ca.key" 2>/dev/null
  chmod 0600 "$CA_DIR/ca.key"
  openssl req -new -x509 -key "$CA_DIR/ca.key" -sha256 -days "$CA_DAYS" \
    -subj "/CN=vigil-ca" -config "$CA_DIR/openssl.cnf" -extensions ca_ext \
    -out "$CA_DIR/ca.pem" 2>"$CA_DIR/.openssl.err" ||
    { cat "$CA_DIR/.openssl.err" >&2; die "CA certificate failed"; }
  chmod 0644 "$CA_DIR/ca.pem"
  gen_crl
  echo "provision: CA created in $CA_DIR (ca.pem, crl.pem; ca.key stays here, 0600)"
}

# sign NAME OUTDIR EXT [SAN]: key + CSR + certificate OUTDIR/NAME.{key,crt}.
sign() {
  local name=$1 out=$2 ext=$3 san=${4:-}
  local key="$out/$name.key" csr="$out/$name.csr" crt="$out/$name.crt"
  [ -z "$(valid_serial "$name")" ] ||
    die "$name already has a valid certificate (revoke it first to re-issue)"
  openssl genpkey "${KEY_ALG[@]}" -out "$key.new" 2>/dev/null
  chmod 0600 "$key.new"
  openssl req -new -key "$key.new" -subj "/CN=$name" -out "$csr" 2>/dev/null
  local extfile=()
  if [ -n "$san" ]; then
    # A server certificate: the CA's config plus the subjectAltName.
    cat "$CA_DIR/openssl.cnf" > "$out/.ext.cnf"
    printf '[ server_ext ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectAltName = %s\n' "$san" >> "$out/.ext.cnf"
    extfile=(-config "$out/.ext.cnf")
  else
    extfile=(-config "$CA_DIR/openssl.cnf")
  fi
  if ! openssl ca "${extfile[@]}" -batch -notext -extensions "$ext" -in "$csr" \
      -out "$crt.new" 2>"$CA_DIR/.openssl.err"; then
    rm -f "$key.new" "$crt.new" "$csr" "$out/.ext.cnf"
    sed -n '/error\|ERROR\|TXT_DB/p' "$CA_DIR/.openssl.err" >&2
    die "signing $name failed"
  fi
  rm -f "$csr" "$out/.ext.cnf"
  chmod 0644 "$crt.new"
  mv -f "$key.new" "$key"
  mv -f "$crt.new" "$crt"
}

# The firmware's settings (firmware/esp32/README.md, "Device identity"):
# an NVS partition image source for nvs_partition_gen.py, and an sdkconfig
# fragment with the id and the broker URI.
write_firmware_settings() {
  local id=$1 uri=$2 d="$CA_DIR/devices"
  local abs
  abs=$(cd "$d" && pwd)
  cat > "$d/$id.nvs.csv" <<CSV
key,type,encoding,value
vigil_id,namespace,,
device_id,data,string,$id
ca_pem,file,string,$(cd "$CA_DIR" && pwd)/ca.pem
client_crt,file,string,$abs/$id.crt
client_key,file,string,$abs/$id.key
CSV
  chmod 0600 "$d/$id.nvs.csv"
  {
    echo "# Vigil device $id — written by provision-device.sh"
    echo "CONFIG_VIGIL_DEVICE_ID=\"$id\""
    [ -n "$uri" ] && echo "CONFIG_VIGIL_BROKER_URI=\"$uri\""
  } > "$d/$id.sdkconfig"
  chmod 0644 "$d/$id.sdkconfig"
}

cmd_issue() {
  local id="" uri=""
  while [ $# -gt 0 ]; do
    case $1 in
      --broker-uri) [ $# -ge 2 ] || die "--broker-uri needs a value"; uri=$2; shift 2 ;;
      -*) die "unknown option $1" ;;
      *) [ -z "$id" ] || die "one ID per issue"; id=$1; shift ;;
    esac
  done
  [ -n "$id" ] || die "usage: issue ID [--broker-uri URI]"
  valid_id "$id" || die "invalid device id (1..64 of [A-Za-z0-9_.-], not . or ..)"
  [[ -z $uri || $uri =~ ^mqtts://[^[:space:]\"]+$ ]] || die "--broker-uri must be mqtts://HOST:PORT"
  need_ca
  [ -e "$CA_DIR/services/$id.crt" ] && die "$id is a service's name"
  sign "$id" "$CA_DIR/devices" client_ext
  write_firmware_settings "$id" "$uri"
  echo "provision: device $id: $CA_DIR/devices/$id.crt (key $id.key, firmware settings $id.nvs.csv, $id.sdkconfig)"
}

cmd_issue_service() {
  [ $# -eq 1 ] || die "usage: issue-service NAME"
  valid_id "$1" || die "invalid service name (same rule as device ids)"
  need_ca
  [ -e "$CA_DIR/devices/$1.crt" ] && die "$1 is a device's id"
  sign "$1" "$CA_DIR/services" client_ext
  echo "provision: service $1: $CA_DIR/services/$1.crt (key $1.key)"
}

cmd_issue_broker() {
  [ $# -ge 1 ] || die "usage: issue-broker HOST..."
  need_ca
  local san="" h
  for h in "$@"; do
    if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+="${san:+,}IP:$h"
    elif [[ $h =~ ^[A-Za-z0-9.-]{1,253}$ ]]; then san+="${san:+,}DNS:$h"
    else die "invalid host '$h'"; fi
  done
  # The broker's CN is not a client identity; still unique in the index.
  local serial
  serial=$(valid_serial broker)
  if [ -n "$serial" ]; then
    ossl_ca -revoke "$CA_DIR/newcerts/$serial.pem" -crl_reason superseded 2>/dev/null
  fi
  rm -f "$CA_DIR/broker/broker.crt"
  sign broker "$CA_DIR/broker" server_ext "$san"
  gen_crl
  echo "provision: broker certificate for $*: $CA_DIR/broker/broker.crt (key broker.key)"
}

cmd_revoke() {
  [ $# -eq 1 ] || die "usage: revoke ID"
  valid_id "$1" || die "invalid id"
  need_ca
  local serial
  serial=$(valid_serial "$1")
  [ -n "$serial" ] || die "$1 has no valid certificate"
  ossl_ca -revoke "$CA_DIR/newcerts/$serial.pem" -crl_reason keyCompromise 2>"$CA_DIR/.openssl.err" ||
    { cat "$CA_DIR/.openssl.err" >&2; die "revoke failed"; }
  gen_crl
  echo "provision: revoked $1 (serial $serial); $CA_DIR/crl.pem updated —" \
       "reload the broker (SIGHUP or restart) so it reads the new CRL"
}

cmd_list() {
  need_ca
  printf '%-8s %-24s %-8s %-15s %s\n' KIND NAME STATE EXPIRES SERIAL
  awk -F'\t' '{ st = $1=="V" ? "valid" : ($1=="R" ? "revoked" : "expired");
                cn = $6; sub(/^.*\/CN=/, "", cn); print cn "\t" st "\t" $2 "\t" $4 }' \
      "$CA_DIR/index.txt" |
  while IFS=$'\t' read -r cn st exp serial; do
    local kind=device
    [ -e "$CA_DIR/services/$cn.crt" ] && kind=service
    [ "$cn" = broker ] && [ -e "$CA_DIR/broker/broker.crt" ] && kind=broker
    printf '%-8s %-24s %-8s %-15s %s\n' "$kind" "$cn" "$st" "$exp" "$serial"
  done
}

command -v openssl >/dev/null || die "openssl is not installed"
while [ $# -gt 0 ]; do
  case $1 in
    --ca) [ $# -ge 2 ] || die "--ca needs a directory"; CA_DIR=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
verb=$1; shift
case $verb in
  ca) [ "${1:-}" = init ] || die "usage: ca init DIR"; shift; cmd_ca_init "$@" ;;
  issue) cmd_issue "$@" ;;
  issue-service) cmd_issue_service "$@" ;;
  issue-broker) cmd_issue_broker "$@" ;;
  revoke) cmd_revoke "$@" ;;
  crl) need_ca; gen_crl; echo "provision: $CA_DIR/crl.pem regenerated" ;;
  list) cmd_list ;;
  *) usage >&2; exit 2 ;;
esac
