"""vigild against hostile input (issue 10, item 8, the core's part): the
device cap, completeness poisoning, ack matching, the database's file mode.
Real Mosquitto, real vigild, real SQLite."""
import json
import os
import stat
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Mosquitto, Proc, TempDirTest, binary, free_port, mosquitto_pub,  # noqa: E402
                     wait_for, wait_port)
from vigil_client import WsCollector, http, metric  # noqa: E402


class HardeningCoreTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.broker = Mosquitto(self.tmp).start()
        self.track(self.broker)
        self.http_port = free_port()
        self.db = os.path.join(self.tmp, "vigil.db")
        self.vigild = None

    def tearDown(self):
        if self.vigild:
            self.vigild.stop()
        super().tearDown()

    def start_vigild(self, *extra):
        args = [binary("vigild"), "--broker", self.broker.url, "--listen",
                f"127.0.0.1:{self.http_port}", "--db", self.db, "--client-id",
                f"vigild-hc-{os.getpid()}-{self.http_port}", *extra]
        self.vigild = Proc(args, os.path.join(self.tmp, "vigild.log"))
        wait_port(self.http_port)
        wait_for(lambda: http(self.http_port, "GET", "/healthz")[0] == 200, 10,
                 what="vigild healthy")
        wait_for(lambda: metric(self.http_port, "vigil_mqtt_connected") == 1, 10,
                 what="vigild connected")
        return self.vigild

    def stop_vigild(self):
        rc = self.vigild.stop()
        self.vigild = None
        return rc

    def pub(self, dev, payload, kind="data", **kw):
        mosquitto_pub(self.broker.port, f"sensors/esp32/{dev}/{kind}", payload, **kw)

    def rejected(self, reason):
        return metric(self.http_port, "vigil_rejected_total", {"reason": reason}) or 0

    # -- the database holds health data: 0600, with its WAL ----------------
    def test_database_and_wal_are_private(self):
        old = os.umask(0o022)  # the usual umask, which left the file 0644
        try:
            self.start_vigild()
        finally:
            os.umask(old)
        self.pub("ESP32_001", {"heart_rate": 70, "seq": 1, "boot": 1})
        wait_for(lambda: metric(self.http_port, "vigil_stored_total") >= 1, 10, what="stored")
        for suffix in ("", "-wal", "-shm"):
            p = self.db + suffix
            self.assertTrue(os.path.exists(p), p)
            mode = stat.S_IMODE(os.stat(p).st_mode)
            self.assertEqual(mode & 0o077, 0, f"{p} is {oct(mode)}")
        self.assertEqual(self.stop_vigild(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
