#!/usr/bin/python3
"""The original design, as a user would run it: paho-mqtt + a `websockets`
server + sqlite3, doing exactly what its on_message did — json decode, enrich
with device_id / received_at / topic, store, broadcast to every client.

Benchmark baseline only (docs/BENCHMARKS.md). Kept charitable: WAL journal
with synchronous=NORMAL (a commit per message without an fsync each), and
websockets.broadcast() (no per-client coroutine). Run with Debian's
/usr/bin/python3 (python3-paho-mqtt 1.6, python3-websockets 10.4).

usage: python_design.py --broker-port P --ws-port P --db FILE [--duration S]
"""
import argparse
import asyncio
import datetime
import json
import signal
import sqlite3

import paho.mqtt.client as mqtt
import websockets

ap = argparse.ArgumentParser()
ap.add_argument("--broker-port", type=int, required=True)
ap.add_argument("--ws-port", type=int, required=True)
ap.add_argument("--db", required=True)
ap.add_argument("--duration", type=float, default=900)
args = ap.parse_args()

clients = set()
loop = None

db = sqlite3.connect(args.db, check_same_thread=False)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("""CREATE TABLE IF NOT EXISTS sensor_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT, object_temp REAL,
    ambient_temp REAL, heart_rate REAL, spo2 REAL, timestamp INTEGER,
    received_at TEXT, topic TEXT)""")
db.commit()


def broadcast(text):
    websockets.broadcast(clients, text)


def on_connect(client, userdata, flags, rc):
    client.subscribe("sensors/esp32/+/data", qos=1)


def on_message(client, userdata, msg):
    try:
        data = json.loads(msg.payload.decode())
    except (ValueError, UnicodeDecodeError):
        return
    data["device_id"] = msg.topic.split("/")[2]
    data["received_at"] = datetime.datetime.utcnow().isoformat()
    data["topic"] = msg.topic
    db.execute("INSERT INTO sensor_data (device_id, object_temp, ambient_temp, heart_rate, spo2,"
               " timestamp, received_at, topic) VALUES (?,?,?,?,?,?,?,?)",
               (data["device_id"], data.get("object_temp"), data.get("ambient_temp"),
                data.get("heart_rate"), data.get("spo2"), data.get("timestamp"),
                data["received_at"], data["topic"]))
    db.commit()
    text = json.dumps({"type": "sensor_data", "data": data})
    loop.call_soon_threadsafe(broadcast, text)


async def handler(ws, path=None):
    clients.add(ws)
    try:
        async for _ in ws:  # clients' messages are ignored
            pass
    finally:
        clients.discard(ws)


async def main():
    global loop
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    mq = mqtt.Client(client_id="", clean_session=True)
    mq.on_connect = on_connect
    mq.on_message = on_message
    mq.connect("127.0.0.1", args.broker_port, 60)
    mq.loop_start()
    async with websockets.serve(handler, "127.0.0.1", args.ws_port, max_queue=None):
        try:
            await asyncio.wait_for(stop, args.duration)
        except asyncio.TimeoutError:
            pass
    mq.loop_stop()
    db.close()


asyncio.run(main())
