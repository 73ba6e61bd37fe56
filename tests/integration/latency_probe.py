#!/usr/bin/python3
"""N sequential requests on one kept-alive mTLS connection: the latency a
client sees, end to end (tests only, loopback).

usage: latency_probe.py PORT CA CERT KEY N METHOD PATH [JSON_BODY]
prints one JSON object: n, median_ms, p90_ms, max_ms, connections (1 when
the connection stayed the same), statuses
"""
import http.client
import json
import ssl
import sys
import time

port, ca, cert, key, n, method, path = sys.argv[1:8]
body = sys.argv[8] if len(sys.argv) > 8 else None
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
conn = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=10)
conn.connect()
first_sock = conn.sock
headers = {"Content-Type": "application/json"} if body else {}
times, statuses, connections = [], {}, 1
for _ in range(int(n)):
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    times.append((time.perf_counter() - t0) * 1000)
    statuses[r.status] = statuses.get(r.status, 0) + 1
    if conn.sock is not first_sock:
        connections += 1
        first_sock = conn.sock
times.sort()
print(json.dumps({"n": len(times), "median_ms": round(times[len(times) // 2], 3),
                  "p90_ms": round(times[int(len(times) * 0.9)], 3), "max_ms": round(times[-1], 3),
                  "connections": connections, "statuses": statuses}))
