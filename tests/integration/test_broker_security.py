"""The production broker config (deploy/mosquitto/vigil-tls.conf, paths and
port rewritten only) with a CA the test makes with scripts/provision-device.sh:
per-device client certificates, the CN as username and client id, the
project's ACL, a CRL. vigild connects with its own service certificate.
(vigild refusing a broker whose certificate does not verify: test_tls.py.)"""
import os
import re
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (SOURCE, ConfiguredMosquitto, Proc, TempDirTest, binary,  # noqa: E402
                     free_port, give_to_mosquitto, production_broker_conf, provision,
                     wait_for, wait_port)
from vigil_client import WsCollector, http, metric  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

DEVICES = ("ESP32_001", "ESP32_002", "ESP32_003")


def reading(seq, hr=70):
    return f'{{"heart_rate":{hr},"spo2":97,"seq":{seq},"boot":1,"timestamp":{seq * 1000}}}'


class BrokerSecurityTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.ca = os.path.join(self.tmp, "ca")
        provision(self.ca, "ca", "init")
        for d in DEVICES:
            provision(self.ca, "issue", d)
        provision(self.ca, "issue-service", "vigild")
        provision(self.ca, "issue-broker", "127.0.0.1")
        self.port = free_port()
        self.http_port = free_port()
        self.broker = None

    # ---- helpers ----

    def start_broker(self):
        os.makedirs(os.path.join(self.tmp, "broker"), exist_ok=True)
        work = os.path.join(self.tmp, "broker")
        conf = production_broker_conf(work, self.ca, self.port)
        os.chmod(self.tmp, 0o711)  # the broker's own user reaches its files below
        give_to_mosquitto(self.ca, work)
        self.broker = self.track(ConfiguredMosquitto(work, conf, self.port).start())
        return self.broker

    def cert(self, name):
        kind = "services" if name == "vigild" else "devices"
        return (f"{self.ca}/{kind}/{name}.crt", f"{self.ca}/{kind}/{name}.key")

    def cli_pub(self, topic, payload, cert=None, key=None, client_id=None):
        """mosquitto_pub over TLS; returns its exit status."""
        args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "--cafile",
                f"{self.ca}/ca.pem", "-q", "1", "-t", topic, "-m", payload]
        if cert:
            args += ["--cert", cert, "--key", key]
        if client_id:
            args += ["-i", client_id]
        return subprocess.run(args, capture_output=True, timeout=15).returncode

    def client(self, name, client_id=None, clean=True):
        """A connected paho client holding NAME's certificate."""
        got = {"rc": None, "msgs": [], "subacks": []}
        c = mqtt.Client(client_id=client_id or name, clean_session=clean)
        crt, key = self.cert(name)
        c.tls_set(ca_certs=f"{self.ca}/ca.pem", certfile=crt, keyfile=key)
        c.on_connect = lambda cl, u, f, rc: got.__setitem__("rc", rc)
        c.on_message = lambda cl, u, m: got["msgs"].append((m.topic, m.payload.decode()))
        c.on_subscribe = lambda cl, u, mid, qos: got["subacks"].append(tuple(qos))
        c.connect("127.0.0.1", self.port, keepalive=30)
        c.loop_start()
        self.addCleanup(lambda: (c.disconnect(), c.loop_stop()))
        wait_for(lambda: got["rc"] is not None, 10, what=f"{name} CONNACK")
        self.assertEqual(got["rc"], 0, f"{name} refused")
        return c, got

    def start_vigild(self, tag="vigild"):
        crt, key = self.cert("vigild")
        args = [binary("vigild"), "--broker", f"mqtts://127.0.0.1:{self.port}",
                "--tls-ca", f"{self.ca}/ca.pem", "--tls-cert", crt, "--tls-key", key,
                "--listen", f"127.0.0.1:{self.http_port}", "--db", f"{self.tmp}/v.db"]
        p = self.track(Proc(args, os.path.join(self.tmp, f"{tag}.log")))
        wait_port(self.http_port)
        wait_for(lambda: metric(self.http_port, "vigil_mqtt_connected") == 1, 15,
                 what="vigild connected with its service certificate")
        return p

    def device_ids(self):
        status, body = http(self.http_port, "GET", "/api/devices")
        self.assertEqual(status, 200)
        items = body["devices"] if isinstance(body, dict) else body
        return {d["device_id"] for d in items}

    def stored_ids(self):
        with sqlite3.connect(f"file:{self.tmp}/v.db?mode=ro", uri=True, timeout=5) as db:
            return {r[0] for r in db.execute(
                "SELECT d.id FROM readings r JOIN devices d ON d.key = r.device")}, \
                {r[0] for r in db.execute("SELECT id FROM devices")}

    # ---- tests ----

    def test_shipped_config_queues_like_the_demo_config(self):
        """vigil-tls.conf is standalone, so its queueing and persistence values
        are a copy of vigil.conf's: they must not drift apart."""
        keys = ("set_tcp_nodelay", "persistence", "autosave_interval", "max_queued_messages",
                "max_queued_bytes", "max_inflight_messages", "persistent_client_expiration",
                "message_size_limit")

        def settings(name):
            with open(os.path.join(SOURCE, "deploy", "mosquitto", name)) as f:
                return {ln.split()[0]: ln.split()[1:] for ln in f
                        if ln.strip() and not ln.startswith("#") and ln.split()[0] in keys}
        self.assertEqual(settings("vigil-tls.conf"), settings("vigil.conf"))
        self.assertEqual(set(settings("vigil-tls.conf")), set(keys))

    def test_only_valid_certificates_of_the_ca_connect(self):
        self.start_broker()
        topic = "sensors/esp32/ESP32_001/data"
        crt, key = self.cert("ESP32_001")
        self.assertEqual(self.cli_pub(topic, reading(1), crt, key), 0, "a valid device connects")
        self.assertNotEqual(self.cli_pub(topic, reading(2)), 0, "no client certificate")
        # A certificate with the right CN from another CA (a forged identity).
        other = os.path.join(self.tmp, "other")
        provision(other, "ca", "init")
        provision(other, "issue", "ESP32_001")
        self.assertNotEqual(self.cli_pub(topic, reading(3), f"{other}/devices/ESP32_001.crt",
                                         f"{other}/devices/ESP32_001.key"), 0,
                            "a certificate of another CA")
        # Plain MQTT on the TLS port is not a way in either.
        plain = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t",
                                topic, "-m", reading(4)], capture_output=True, timeout=15)
        self.assertNotEqual(plain.returncode, 0, "plain MQTT")

    def test_revoked_certificate_cannot_connect(self):
        self.start_broker()
        crt, key = self.cert("ESP32_003")
        topic = "sensors/esp32/ESP32_003/data"
        self.assertEqual(self.cli_pub(topic, reading(1), crt, key), 0)
        provision(self.ca, "revoke", "ESP32_003")
        give_to_mosquitto(self.ca)
        # The documented reload: SIGHUP makes the broker read the new CRL.
        self.broker.proc.p.send_signal(1)
        wait_for(lambda: self.cli_pub(topic, reading(2), crt, key) != 0, 10,
                 what="the revoked certificate refused after SIGHUP")
        # Others are unaffected, and a restart keeps the revocation.
        ok_crt, ok_key = self.cert("ESP32_001")
        self.assertEqual(self.cli_pub("sensors/esp32/ESP32_001/data", reading(1), ok_crt, ok_key), 0)
        self.broker.stop()
        self.start_broker()
        self.assertNotEqual(self.cli_pub(topic, reading(3), crt, key), 0)

    def test_device_cannot_publish_as_another_device(self):
        self.start_broker()
        self.start_vigild()
        ws = WsCollector(self.http_port)
        self.addCleanup(ws.close)
        c, _ = self.client("ESP32_001")
        # As ESP32_002, on every topic a device may write; then one reading of
        # its own. Same connection, in order: once the own reading is stored,
        # the forged ones would have been processed too.
        for kind, payload in (("data", reading(1, 150)), ("status", '{"status":"online"}'),
                              ("ack", '{"id":"x","ok":true}')):
            c.publish(f"sensors/esp32/ESP32_002/{kind}", payload, qos=1).wait_for_publish(5)
        # And topics no device may write, even its own config.
        c.publish("commands/esp32/ESP32_002/control", '{"cmd":"reboot"}', qos=1).wait_for_publish(5)
        c.publish("sensors/esp32/ESP32_001/config", '{"interval_ms":10}', qos=1,
                  retain=True).wait_for_publish(5)
        c.publish("sensors/esp32/ESP32_001/data", reading(1), qos=1).wait_for_publish(5)
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= 1, 15,
                 what="the device's own reading stored")
        wait_for(lambda: any("ESP32_001" in str(m) for m in ws.messages), 10,
                 what="the own reading on the WebSocket")
        time.sleep(0.5)
        self.assertEqual(metric(self.http_port, "vigil_stored_total"), 1)
        self.assertEqual(self.device_ids(), {"ESP32_001"})
        status, _ = http(self.http_port, "GET", "/api/devices/ESP32_002/readings")
        self.assertNotEqual(status, 200)
        self.assertFalse([m for m in ws.messages if "ESP32_002" in str(m)])
        received = {k: metric(self.http_port, "vigil_received_total", {"kind": k})
                    for k in ("data", "status", "ack", "other")}
        self.assertEqual(received, {"data": 1, "status": 0, "ack": 0, "other": 0},
                         "vigild received only the device's own reading")
        readings, devices = self.stored_ids()
        self.assertEqual((readings, devices), ({"ESP32_001"}, {"ESP32_001"}))
        # The retained config the device tried to plant is not there.
        spy, got = self.client("vigild", client_id="vigild-spy")
        spy.subscribe("sensors/esp32/+/config", qos=1)
        time.sleep(1.0)
        self.assertEqual(got["msgs"], [])

    def test_device_cannot_read_another_devices_commands(self):
        self.start_broker()
        dev, got = self.client("ESP32_001")
        dev.subscribe([("commands/esp32/ESP32_002/control", 1),
                       ("sensors/esp32/ESP32_002/config", 1),
                       ("sensors/esp32/+/data", 1),
                       ("commands/#", 1),
                       ("commands/esp32/ESP32_001/control", 1)])
        wait_for(lambda: got["subacks"], 10, what="SUBACK")
        # vigild's identity commands both devices (without vigild running: this
        # client is the only one holding that certificate).
        svc, _ = self.client("vigild")
        for dev_id in ("ESP32_002", "ESP32_001"):
            svc.publish(f"commands/esp32/{dev_id}/control", f'{{"cmd":"identify","to":"{dev_id}"}}',
                        qos=1).wait_for_publish(5)
            svc.publish(f"sensors/esp32/{dev_id}/config", '{"interval_ms":2000}', qos=1,
                        retain=True).wait_for_publish(5)
        other, _ = self.client("ESP32_002")
        other.publish("sensors/esp32/ESP32_002/data", reading(1), qos=1).wait_for_publish(5)
        wait_for(lambda: any("ESP32_001" in t for t, _ in got["msgs"]), 10,
                 what="ESP32_001's own command")
        time.sleep(1.0)
        self.assertFalse([m for m in got["msgs"] if "ESP32_002" in m[0] or "ESP32_002" in m[1]],
                         got["msgs"])

    def test_device_cannot_take_over_vigilds_client_id(self):
        """A device connecting with client id "vigild" (clean start) neither
        kicks vigild off nor wipes the readings queued in its session."""
        self.start_broker()
        p = self.start_vigild()
        connects = metric(self.http_port, "vigil_mqtt_connects_total")
        crt, key = self.cert("ESP32_001")
        for i in range(3):
            self.assertEqual(self.cli_pub("sensors/esp32/ESP32_001/data", reading(i + 1), crt, key,
                                          client_id="vigild"), 0)
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") == 3, 15,
                 what="the device's readings (under its own identity)")
        self.assertEqual(metric(self.http_port, "vigil_mqtt_disconnects_total"), 0)
        self.assertEqual(metric(self.http_port, "vigil_mqtt_connects_total"), connects)
        # vigild away: its persistent session queues ESP32_002's readings ...
        self.assertEqual(p.stop(), 0)
        crt2, key2 = self.cert("ESP32_002")
        for i in range(5):
            self.assertEqual(self.cli_pub("sensors/esp32/ESP32_002/data", reading(i + 1), crt2,
                                          key2), 0)
        # ... which a device's clean start "as vigild" must not wipe.
        hijack = mqtt.Client(client_id="vigild", clean_session=True)
        hijack.tls_set(ca_certs=f"{self.ca}/ca.pem", certfile=crt, keyfile=key)
        hijack.connect("127.0.0.1", self.port)
        hijack.loop_start()
        time.sleep(1.0)
        hijack.disconnect()
        hijack.loop_stop()
        self.start_vigild("vigild-2")
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") == 5, 15,
                 what="the 5 readings queued while vigild was away")
        readings, _ = self.stored_ids()
        self.assertIn("ESP32_002", readings)

    def test_simulated_fleet_with_per_device_certificates(self):
        """vigil-sim's devices, each with its own certificate, reach vigild;
        a device whose certificate was revoked does not."""
        provision(self.ca, "revoke", "ESP32_003")
        self.start_broker()
        self.start_vigild()
        sim = subprocess.run(
            [binary("vigil-sim"), "--broker", f"mqtts://127.0.0.1:{self.port}",
             "--tls-ca", f"{self.ca}/ca.pem", "--tls-cert-dir", f"{self.ca}/devices",
             "--devices", "3", "--rate", "5", "--duration", "3", "--clean-exit"],
            capture_output=True, text=True, timeout=60)
        failures = re.search(r"connect_failures=(\d+)", sim.stdout)
        self.assertTrue(failures and int(failures.group(1)) > 0, sim.stdout + sim.stderr)
        wait_for(lambda: self.device_ids() == {"ESP32_001", "ESP32_002"}, 10,
                 what="the two valid devices at vigild")
        time.sleep(0.5)
        self.assertEqual(self.device_ids(), {"ESP32_001", "ESP32_002"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
