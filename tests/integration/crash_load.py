#!/usr/bin/python3
"""A load client for crash tests: generate + certify pairs over mTLS
keep-alive connections, while the test kills parts of the daemon, until a
stop file appears.

usage: crash_load.py HOST PORT CA CERT KEY CONNECTIONS OUT_DIR STOP_FILE [PAUSE]

Each connection runs pairs back to back, PAUSE seconds apart (default 0).

Writes, as they happen (one JSON object per line, flushed at once):
  OUT_DIR/acks.jsonl     every acknowledged certificate (201): session,
                         cert_url, the compact JWS, the time its pair began
                         (the generate request was sent) and was answered
  OUT_DIR/events.jsonl   every failed request: the time, the step
                         (generate, certify, recertify), the status (0: no
                         answer: connection refused, reset, closed or timed
                         out) and the error code of a JSON error body
  OUT_DIR/double.jsonl   a session certified twice (a 201 for a session that
                         had one): must stay empty
A session whose certify request got no answer, or a 503, is certified
again (up to 30 s) once the daemon answers: a 201 then is its first
certificate; a 409 (session_used) means the lost request did certify it
(the test finds that certificate in the store); a 410 means it expired.
Every 5th acknowledged session is certified again at once: it must get a
409. At the end prints JSON {"acks", "failures", "recertified", "doubles"}.
"""
import http.client
import json
import os
import ssl
import sys
import threading
import time

lock = threading.Lock()


def append(path, obj):
    with lock:
        with open(path, "a") as f:
            f.write(json.dumps(obj) + "\n")
            f.flush()


class Worker(threading.Thread):
    def __init__(self, n, args):
        super().__init__(daemon=True)
        self.n = n
        self.host, self.port, self.ctx, self.out, self.stop, self.pause = args
        self.conn = None
        self.acks = 0
        self.failures = 0
        self.recertified = 0
        self.doubles = 0
        self.pending = []  # sessions whose certify got no answer or a 503
        self.certified = set()

    def connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=20)

    def call(self, path, body):
        """(status, json body or None); status 0 when there was no answer"""
        try:
            if self.conn is None:
                self.connect()
            self.conn.request("POST", path, body=json.dumps(body),
                              headers={"Content-Type": "application/json"})
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, None
        except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError):
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
            return 0, None

    def fail(self, step, status, body):
        self.failures += 1
        code = None
        if isinstance(body, dict):
            code = body.get("error", {}).get("code")
        append(os.path.join(self.out, "events.jsonl"),
               {"t": time.time(), "worker": self.n, "step": step, "status": status, "code": code})

    def acknowledged(self, sid, body, began):
        if sid in self.certified:
            self.doubles += 1
            append(os.path.join(self.out, "double.jsonl"), {"session": sid, "t": time.time()})
        self.certified.add(sid)
        self.acks += 1
        append(os.path.join(self.out, "acks.jsonl"),
               {"session": sid, "cert_url": body.get("cert_url"), "jws": body.get("certificate"),
                "began": began, "t": time.time()})

    def certify(self, sid, step, began):
        status, body = self.call("/api/generate-certificate", {"generation_session_id": sid})
        if status == 201 and isinstance(body, dict):
            self.acknowledged(sid, body, began)
        elif status == 409 and step in ("recertify", "retry"):
            pass  # as it must be; a retry's 409 (the lost request did certify) is logged as retry-used
        else:
            self.fail(step, status, body)
        return status

    def retry_pending(self):
        keep = []
        for sid, since in self.pending:
            status = self.certify(sid, "retry", since)
            if status in (0, 503) and time.time() - since < 30:
                keep.append((sid, since))
            elif status == 409:
                self.recertified += 1
                append(os.path.join(self.out, "events.jsonl"),
                       {"t": time.time(), "worker": self.n, "step": "retry-used", "status": 409,
                        "session": sid})
        self.pending = keep

    def run(self):
        while not os.path.exists(self.stop):
            if self.pending:
                self.retry_pending()
            began = time.time()
            status, body = self.call("/api/generate", {"preset": "soc2", "project": "payments",
                                                       "environment": "production"})
            if status != 200 or not isinstance(body, dict):
                self.fail("generate", status, body)
                time.sleep(0.05)
                continue
            sid = body["generation_session_id"]
            status = self.certify(sid, "certify", began)
            if status in (0, 503):
                self.pending.append((sid, began))
                time.sleep(0.05)
            elif status == 201 and self.acks % 5 == 0:
                self.certify(sid, "recertify", began)
            time.sleep(self.pause)
        deadline = time.time() + 30
        while self.pending and time.time() < deadline:
            self.retry_pending()
            time.sleep(0.2)
        if self.conn is not None:
            self.conn.close()


def main():
    host, port, ca, cert, key, connections, out, stop = sys.argv[1:9]
    pause = float(sys.argv[9]) if len(sys.argv) > 9 else 0.0
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    os.makedirs(out, exist_ok=True)
    for name in ("acks.jsonl", "events.jsonl", "double.jsonl"):
        open(os.path.join(out, name), "a").close()
    workers = [Worker(i, (host, int(port), ctx, out, stop, pause)) for i in range(int(connections))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"acks": sum(w.acks for w in workers),
                      "failures": sum(w.failures for w in workers),
                      "recertified": sum(w.recertified for w in workers),
                      "doubles": sum(w.doubles for w in workers)}))


if __name__ == "__main__":
    main()
