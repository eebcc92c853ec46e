# tls-demo.sh — sourced by scripts/run.sh when VIGIL_TLS=1: the demo with
# the production broker config (deploy/mosquitto/vigil-tls.conf, its paths
# and port rewritten) and certificates made here by provision-device.sh:
# a CA in $RUN/ca, the broker's certificate for 127.0.0.1, one client
# certificate per simulated device and vigild's service certificate.
# Reuses the CA and the certificates of an earlier run. Still loopback only.
#
# In: ROOT RUN MQTT_PORT DEVICES (from run.sh). Out: $RUN/mosquitto.conf
# replaced, BROKER_URL, WEB_SCHEME, VIGILD_TLS and SIM_TLS (extra arguments).
CA="$RUN/ca"
PROVISION=(bash "$ROOT/scripts/provision-device.sh" --ca "$CA")
if [ ! -f "$CA/ca.pem" ]; then
  bash "$ROOT/scripts/provision-device.sh" ca init "$CA" >/dev/null
fi
[ -f "$CA/broker/broker.crt" ] || "${PROVISION[@]}" issue-broker 127.0.0.1 >/dev/null
[ -f "$CA/services/vigild.crt" ] || "${PROVISION[@]}" issue-service vigild >/dev/null
# The simulator's ids: ESP32_ + the number zero-padded to >= 3 digits.
tls_width=${#DEVICES}
[ "$tls_width" -lt 3 ] && tls_width=3
tls_new=0
for ((i = 1; i <= DEVICES; i++)); do
  printf -v tls_id 'ESP32_%0*d' "$tls_width" "$i"
  if [ ! -f "$CA/devices/$tls_id.crt" ]; then
    "${PROVISION[@]}" issue "$tls_id" --broker-uri "mqtts://127.0.0.1:$MQTT_PORT" >/dev/null
    tls_new=$((tls_new + 1))
  fi
done
echo "run: TLS: CA $CA ($tls_new device certificates issued, $DEVICES in use)"

# The shipped production config, with this run's files, port and log.
cp "$ROOT/deploy/mosquitto/vigil.acl" "$RUN/vigil.acl"
sed -e "s|^listener 8883\$|listener $MQTT_PORT 127.0.0.1|" \
    -e "s|/etc/mosquitto/certs/ca.pem|$CA/ca.pem|" \
    -e "s|/etc/mosquitto/certs/crl.pem|$CA/crl.pem|" \
    -e "s|/etc/mosquitto/certs/broker.crt|$CA/broker/broker.crt|" \
    -e "s|/etc/mosquitto/certs/broker.key|$CA/broker/broker.key|" \
    -e "s|/etc/mosquitto/vigil.acl|$RUN/vigil.acl|" \
    -e "s|^persistence_location .*|persistence_location $RUN/mosquitto/|" \
    -e "s|^log_dest syslog\$|log_dest file $RUN/mosquitto.log|" \
    "$ROOT/deploy/mosquitto/vigil-tls.conf" > "$RUN/mosquitto.conf"
grep -q "^listener $MQTT_PORT 127.0.0.1\$" "$RUN/mosquitto.conf" ||
  { echo "run: TLS: could not rewrite vigil-tls.conf" >&2; exit 1; }
# Started as root, Mosquitto drops to its own user: let it read its key.
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then
  chown mosquitto: "$CA/broker/broker.key"
fi

BROKER_URL="mqtts://127.0.0.1:$MQTT_PORT"
VIGILD_TLS=(--tls-ca "$CA/ca.pem" --tls-cert "$CA/services/vigild.crt"
            --tls-key "$CA/services/vigild.key")
# vigild's own listener on HTTPS too, with the CA's server certificate for
# 127.0.0.1 (the broker's: same host, same CA the browser is told to trust).
VIGILD_TLS+=(--http-tls-cert "$CA/broker/broker.crt" --http-tls-key "$CA/broker/broker.key")
WEB_SCHEME=https
SIM_TLS=(--tls-ca "$CA/ca.pem" --tls-cert-dir "$CA/devices")
