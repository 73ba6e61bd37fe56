#!/usr/bin/python3
"""A load client for key rotation tests: generate + certify pairs over mTLS
keep-alive connections until a stop file appears.

usage: rotation_load.py HOST PORT CA CERT KEY CONNECTIONS OUT_DIR STOP_FILE

Each connection runs pairs back to back; every certificate's compact JWS is
written to OUT_DIR/cert-<conn>-<n>.jws with the time the certify request
was sent and answered (OUT_DIR/certs.tsv: file, kid, sent, answered, in
seconds since the epoch). A connection the server closed (keep-alive
lifetime) is reopened and counted apart; any request that fails (a status
other than 200/201, or a connection lost mid-request) is an error, written
to OUT_DIR/errors.txt. At the end prints JSON {"pairs", "errors",
"reconnects"} and exits 0.
"""
import base64
import http.client
import json
import os
import ssl
import sys
import threading
import time


def kid_of(jws):
    header = jws.split(".")[0]
    header += "=" * (-len(header) % 4)
    return json.loads(base64.urlsafe_b64decode(header))["kid"]


class Worker(threading.Thread):
    def __init__(self, n, args):
        super().__init__(daemon=True)
        self.n = n
        self.host, self.port, self.ctx, self.out, self.stop = args
        self.pairs = 0
        self.errors = []
        self.reconnects = 0
        self.rows = []
        self.conn = None

    def connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        self.conn.connect()

    def call(self, path, body):
        """(status, body); reopens once when the server closed an idle
        keep-alive connection before the request was sent"""
        for attempt in (0, 1):
            try:
                self.conn.request("POST", path, body=json.dumps(body),
                                  headers={"Content-Type": "application/json"})
            except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError):
                if attempt:
                    raise
                self.reconnects += 1
                self.conn.close()
                self.connect()
                continue
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.connect()
                self.reconnects += 1
            return r.status, data
        raise RuntimeError("unreachable")

    def pair(self):
        status, body = self.call("/api/generate", {"preset": "soc2", "project": "payments",
                                                   "environment": "production"})
        if status != 200:
            raise RuntimeError("generate: %d %s" % (status, body[:200]))
        sid = json.loads(body)["generation_session_id"]
        sent = time.time()
        status, body = self.call("/api/generate-certificate", {"generation_session_id": sid})
        answered = time.time()
        if status != 201:
            raise RuntimeError("certify: %d %s" % (status, body[:200]))
        jws = json.loads(body)["certificate"]
        name = "cert-%d-%d.jws" % (self.n, self.pairs)
        with open(os.path.join(self.out, name), "w") as f:
            f.write(jws)
        self.rows.append("%s\t%s\t%.6f\t%.6f" % (name, kid_of(jws), sent, answered))
        self.pairs += 1

    def run(self):
        self.connect()
        while not os.path.exists(self.stop):
            try:
                self.pair()
            except Exception as e:  # every failure counts: the test expects none
                self.errors.append("%.3f %s: %s" % (time.time(), type(e).__name__, e))
                try:
                    self.conn.close()
                    self.connect()
                except Exception:
                    time.sleep(0.1)
        self.conn.close()


def main():
    host, port, ca, cert, key, connections, out, stop = sys.argv[1:9]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    os.makedirs(out, exist_ok=True)
    workers = [Worker(i, (host, int(port), ctx, out, stop)) for i in range(int(connections))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with open(os.path.join(out, "certs.tsv"), "w") as f:
        for w in workers:
            for row in w.rows:
                f.write(row + "\n")
    with open(os.path.join(out, "errors.txt"), "w") as f:
        for w in workers:
            for e in w.errors:
                f.write(e + "\n")
    print(json.dumps({"pairs": sum(w.pairs for w in workers),
                      "errors": sum(len(w.errors) for w in workers),
                      "reconnects": sum(w.reconnects for w in workers)}))


if __name__ == "__main__":
    main()
