#!/usr/bin/python3
"""Drive credsignd over mTLS 1.3 keep-alive connections (http.client + ssl).

usage:
  pairs.py count HOST PORT CA CERT KEY COUNTS_FILE N
      on one keep-alive connection: warm-up, then N generates, then N
      generate + certify pairs, then N new connections (handshake plus
      GET /healthz); reads the fault module's counts file between the
      phases and prints JSON {"generate": {fn: calls per request}, "pair":
      {...}, "certify": {...}, "handshake": {...}, "errors": n}
  pairs.py load HOST PORT CA CERT KEY CONNECTIONS SECONDS [WARMUP [SPREAD]]
      CONNECTIONS threads, one keep-alive connection each, opened before the
      clock starts; pairs for WARMUP seconds (default 2: the daemon opens its
      sessions and fills their key caches), then pairs for SECONDS, which
      alone are counted; prints JSON {"pairs", "seconds", "pairs_per_s",
      "errors", "p50_ms", "p99_ms"}. With SPREAD = 1 each connection starts
      its pairs as soon as it is open and the next one is opened 20 ms
      later, so that it meets workers busy with the earlier ones (credsignd
      hands a new connection to whichever idle worker accepts first).

The counts file is the one tests/fault/fault_pkcs11.c keeps up to date
($CREDSIGN_FAULT_COUNTS): "NAME COUNT" per line.
"""
import http.client
import json
import ssl
import sys
import threading
import time


def context(ca, cert, key):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


class Client:
    def __init__(self, host, port, ctx):
        self.conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=60)
        self.conn.connect()

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, r.read()

    def generate(self):
        status, body = self.call("POST", "/api/generate",
                                 {"preset": "soc2", "project": "payments", "environment": "production"})
        if status != 200:
            raise RuntimeError("generate: %d %s" % (status, body[:200]))
        return json.loads(body)["generation_session_id"]

    def pair(self):
        sid = self.generate()
        status, body = self.call("POST", "/api/generate-certificate", {"generation_session_id": sid})
        if status != 201:
            raise RuntimeError("certify: %d %s" % (status, body[:200]))

    def close(self):
        self.conn.close()


def read_counts(path):
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                counts[parts[0]] = int(parts[1])
    return counts


def per_request(before, after, n):
    out = {}
    for fn in after:
        d = after[fn] - before.get(fn, 0)
        if d:
            out[fn] = round(d / n, 2)
    out["total"] = round(sum(v for v in out.values()), 2)
    return out


def count(host, port, ctx, counts_path, n):
    c = Client(host, port, ctx)
    for _ in range(5):  # warm-up: the session is open and its key cache filled
        c.pair()
    time.sleep(0.2)
    a = read_counts(counts_path)
    for _ in range(n):
        c.generate()
    b = read_counts(counts_path)
    for _ in range(n):
        c.pair()
    d = read_counts(counts_path)
    c.close()
    for _ in range(n):
        h = Client(host, port, ctx)
        status, _ = h.call("GET", "/healthz")
        if status != 200:
            raise RuntimeError("healthz: %d" % status)
        h.close()
    time.sleep(0.2)
    e = read_counts(counts_path)
    generate = per_request(a, b, n)
    pair = per_request(b, d, n)
    certify = {}
    for fn in set(pair) | set(generate):
        v = round(pair.get(fn, 0) - generate.get(fn, 0), 2)
        if v:
            certify[fn] = v
    return {"generate": generate, "certify": certify, "pair": pair,
            "handshake": per_request(d, e, n)}


def load(host, port, ctx, connections, seconds, warmup, spread):
    clients = [] if spread else [Client(host, port, ctx) for _ in range(connections)]
    latencies = []
    errors = [0]
    lock = threading.Lock()
    start_evt = threading.Event()
    window = [0.0, 0.0]  # the measured window: pairs completed in it count

    def run(c):
        mine = []
        bad = 0
        if c is None:  # spread: connect now, start at once
            c = Client(host, port, ctx)
            with lock:
                clients.append(c)
        else:
            start_evt.wait()
        while time.monotonic() < window[1]:
            t0 = time.monotonic()
            try:
                c.pair()
                t1 = time.monotonic()
                if window[0] <= t1 <= window[1]:
                    mine.append(t1 - t0)
            except Exception:  # noqa: BLE001 - counted, the run goes on
                bad += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    if spread:
        window[0] = window[1] = float("inf")
        threads = [threading.Thread(target=run, args=(None,)) for _ in range(connections)]
        for t in threads:
            t.start()
            time.sleep(0.02)
    else:
        threads = [threading.Thread(target=run, args=(c,)) for c in clients]
        for t in threads:
            t.start()
    w0 = time.monotonic() + warmup
    window[1] = w0 + seconds  # the end first: nothing counts before window[0] is set
    window[0] = w0
    start_evt.set()
    for t in threads:
        t.join()
    elapsed = seconds
    for c in clients:
        c.close()
    latencies.sort()

    def pct(p):
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    return {"pairs": len(latencies), "seconds": round(elapsed, 2),
            "pairs_per_s": round(len(latencies) / elapsed, 1), "errors": errors[0],
            "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main():
    mode = sys.argv[1]
    host, port, ca, cert, key = sys.argv[2:7]
    ctx = context(ca, cert, key)
    if mode == "count":
        out = count(host, int(port), ctx, sys.argv[7], int(sys.argv[8]))
    elif mode == "load":
        warmup = float(sys.argv[9]) if len(sys.argv) > 9 else 2.0
        spread = len(sys.argv) > 10 and sys.argv[10] == "1"
        out = load(host, int(port), ctx, int(sys.argv[7]), float(sys.argv[8]), warmup, spread)
    else:
        sys.exit("unknown mode " + mode)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
