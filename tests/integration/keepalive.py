#!/usr/bin/python3
"""Requests over one kept-alive mTLS connection, with token faults switched
on after the connection is up (TLS needs the token's RNG for new handshakes,
so API-level errors of a token outage show on established connections).

usage: keepalive.py HOST PORT CA CERT KEY CONTROL RULES PRESET SESSION_ID
prints one JSON line: [[status, body], ...] for generate, certify, readyz
"""
import http.client
import json
import ssl
import sys
import time

host, port, ca, cert, key, control, rules, preset, sid = sys.argv[1:10]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
headers = {"Content-Type": "application/json"}


def call(method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    return [r.status, r.read().decode()]


call("GET", "/healthz")  # handshake while the token works
with open(control, "w") as f:
    f.write(rules.replace("\\n", "\n"))
time.sleep(0.05)
try:
    out = [call("POST", "/api/generate", {"preset": preset, "project": "payments", "environment": "production"}),
           call("POST", "/api/generate-certificate", {"generation_session_id": sid}),
           call("GET", "/readyz")]
finally:
    open(control, "w").close()
print(json.dumps(out))
