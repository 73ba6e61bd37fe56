#!/usr/bin/python3
"""Play systemd's side of sd_notify(3): receive notification datagrams on a
unix socket and write each as one JSON line {"t": CLOCK_MONOTONIC seconds,
"msg": [the message's lines]} to OUT until killed. At the first READY=1 it
also records whether the daemon's LOG already says "listening on"
({"ready_log_listening": true|false}) and runs HEALTH... (a curl printing
the HTTP code of /healthz) without waiting, recording its output when it
ends ({"ready_healthz": "200"}). The socket is writable by everyone, like
systemd's.

usage: notify_listener.py SOCKET OUT LOG [HEALTH...]"""
import json
import os
import socket
import subprocess
import sys
import time

path, out_path, log_path, health = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
# as systemd's /run/systemd/notify: any process of the service may send
# (the daemon's network process runs as an unprivileged user)
os.chmod(path, 0o777)
s.settimeout(0.1)
out = open(out_path, "w")


def record(obj):
    out.write(json.dumps(obj) + "\n")
    out.flush()


print("ready", flush=True)
probe = None
seen_ready = False
while True:
    try:
        data = s.recv(65536)
    except socket.timeout:
        data = None
    if data is not None:
        t = time.monotonic()
        lines = data.decode(errors="replace").split("\n")
        record({"t": t, "msg": lines})
        if "READY=1" in lines and not seen_ready:
            seen_ready = True
            try:
                listening = "listening on" in open(log_path, errors="replace").read()
            except OSError:
                listening = False
            record({"ready_log_listening": listening})
            if health:
                probe = subprocess.Popen(health, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if probe is not None and probe.poll() is not None:
        record({"ready_healthz": probe.stdout.read().decode().strip()})
        probe = None
