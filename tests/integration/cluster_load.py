#!/usr/bin/python3
"""Clients of a credsignd cluster (issue 17): several nodes sharing one
PostgreSQL store, reached over mTLS as a client behind a TCP load balancer
would reach them.

usage:
  cluster_load.py race URLS CA CERT KEY ROUNDS
      ROUNDS times: a session generated on one node (in turn), then its
      certify request sent to every node at once (one keep-alive connection
      each, released together). Exactly one 201 and a 409
      session_already_certified from every other node each time, and the
      certificate fetched from every node is the one acknowledged. Prints a
      line per round and a JSON summary; exit 1 on any other outcome.
  cluster_load.py load URLS CA CERT KEY CONNECTIONS OUT_DIR STOP_FILE [PAUSE]
      generate + certify pairs on CONNECTIONS keep-alive connections,
      connection i on node i mod n, until STOP_FILE appears. A connection
      whose node does not answer (refused, reset, timed out: status 0) moves
      to the next node, as a load balancer's health check would move it.
      Writes, as they happen (JSON lines, flushed at once):
        OUT_DIR/acks.jsonl    every acknowledged certificate (201): session,
                              node (URL), cert_url, the compact JWS, when its
                              pair began and was answered
        OUT_DIR/events.jsonl  every failed request: time, node, step
                              (generate, certify, retry, recertify), status (0:
                              no answer), the error code of a JSON error body
        OUT_DIR/double.jsonl  a session acknowledged twice (must stay empty)
      A session whose certify got no answer or a 503 is certified again (on
      the connection's node then, for up to 30 s): a 201 is its first
      certificate, a 409 means the lost request certified it (the check
      finds that certificate in the store). Every 5th acknowledged session is
      certified again at once on another node: it must be a 409. At the end
      prints JSON {"acks", "failures", "recertified", "doubles", "per_node"}.
  cluster_load.py check URLS CA CERT KEY OUT_DIR
      every certificate of OUT_DIR/acks.jsonl: GET CERT_URL's path + ".jws"
      from EVERY node in URLS answers 200 with the JWS acknowledged, which
      verifies (ES256, jwcrypto) under its kid in that node's JWKS and names
      its session; no session acknowledged twice. Prints a JSON summary, exit
      1 with each problem printed.
URLS: comma-separated https URLs of the nodes.
"""
import http.client
import json
import os
import ssl
import sys
import threading
import time
from urllib.parse import urlparse

from jwcrypto import jwk, jws

lock = threading.Lock()
GENERATE = {"preset": "soc2", "project": "payments", "environment": "production"}


def append(path, obj):
    with lock:
        with open(path, "a") as f:
            f.write(json.dumps(obj) + "\n")
            f.flush()


def context(ca, cert, key):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    return ctx


class Node:
    """One keep-alive connection to one node."""

    def __init__(self, url, ctx, timeout=20):
        u = urlparse(url)
        self.url, self.host, self.port, self.ctx, self.timeout = url, u.hostname, u.port, ctx, timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None

    def request(self, method, path, body=None):
        """(status, raw body); status 0 when there was no answer"""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                        timeout=self.timeout)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, data
        except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError):
            self.close()
            return 0, b""

    def post(self, path, body):
        status, data = self.request("POST", path, body)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None


def error_code(body):
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


# ---- race -------------------------------------------------------------------------
def race(urls, ctx, rounds):
    nodes = [Node(u, ctx) for u in urls]
    bad = 0
    for r in range(rounds):
        gen = nodes[r % len(nodes)]
        status, body = gen.post("/api/generate", GENERATE)
        if status != 200 or not isinstance(body, dict):
            print("round %d: generate on %s: %d %s" % (r + 1, gen.url, status, body))
            bad += 1
            continue
        sid = body["generation_session_id"]
        for n in nodes:  # each connection made before the start
            n.request("GET", "/healthz")
        barrier = threading.Barrier(len(nodes))
        results = [None] * len(nodes)

        def send(i):
            barrier.wait()
            results[i] = nodes[i].post("/api/generate-certificate", {"generation_session_id": sid})

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(nodes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = [s for s, _ in results]
        codes = [error_code(b) for s, b in results if s != 201]
        won = [i for i, (s, _) in enumerate(results) if s == 201]
        ok = len(won) == 1 and statuses.count(409) == len(nodes) - 1 and \
            all(c == "session_already_certified" for c in codes)
        detail = ""
        if ok:
            cert = results[won[0]][1]
            path = urlparse(cert["cert_url"]).path + ".jws"
            for n in nodes:  # the one certificate, on every node at once
                s, data = n.request("GET", path)
                if s != 200 or data.decode().strip() != cert["certificate"]:
                    ok = False
                    detail = " %s: GET %s: %d" % (n.url, path, s)
        print("round %d: session generated on node %d; certify statuses %s (201 from node %s)%s%s"
              % (r + 1, r % len(nodes) + 1, statuses, [i + 1 for i in won], detail, "" if ok else " WRONG"))
        if not ok:
            bad += 1
    print(json.dumps({"rounds": rounds, "wrong": bad}))
    return 1 if bad else 0


# ---- load -------------------------------------------------------------------------
class Worker(threading.Thread):
    def __init__(self, n, urls, ctx, out, stop, pause):
        super().__init__(daemon=True)
        self.n, self.urls, self.ctx, self.out, self.stop, self.pause = n, urls, ctx, out, stop, pause
        self.at = n % len(urls)
        self.node = Node(urls[self.at], ctx)
        self.acks = 0
        self.failures = 0
        self.recertified = 0
        self.doubles = 0
        self.per_node = {}
        self.pending = []  # (session, began): certify got no answer or a 503
        self.certified = set()

    def failover(self):
        """the node does not answer: the next one (a load balancer's move)"""
        self.node.close()
        self.at = (self.at + 1) % len(self.urls)
        self.node = Node(self.urls[self.at], self.ctx)

    def fail(self, step, status, body):
        self.failures += 1
        append(os.path.join(self.out, "events.jsonl"),
               {"t": time.time(), "worker": self.n, "node": self.node.url, "step": step, "status": status,
                "code": error_code(body)})
        if status == 0 and step != "recertify":
            self.failover()

    def acknowledged(self, sid, body, began):
        if sid in self.certified:
            self.doubles += 1
            append(os.path.join(self.out, "double.jsonl"), {"session": sid, "t": time.time()})
        self.certified.add(sid)
        self.acks += 1
        self.per_node[self.node.url] = self.per_node.get(self.node.url, 0) + 1
        append(os.path.join(self.out, "acks.jsonl"),
               {"session": sid, "node": self.node.url, "cert_url": body.get("cert_url"),
                "jws": body.get("certificate"), "began": began, "t": time.time()})

    def certify(self, sid, step, began):
        status, body = self.node.post("/api/generate-certificate", {"generation_session_id": sid})
        if status == 201 and isinstance(body, dict):
            self.acknowledged(sid, body, began)
        elif status == 409 and step in ("recertify", "retry"):
            pass  # as it must be (a retry: counted by the caller)
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
                       {"t": time.time(), "worker": self.n, "node": self.node.url, "step": "retry-used",
                        "status": 409, "session": sid})
        self.pending = keep

    def run(self):
        while not os.path.exists(self.stop):
            if self.pending:
                self.retry_pending()
            began = time.time()
            status, body = self.node.post("/api/generate", GENERATE)
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
                # on another node: the session is used there too at once
                here = self.node
                self.node = Node(self.urls[(self.at + 1) % len(self.urls)], self.ctx)
                self.certify(sid, "recertify", began)
                self.node.close()
                self.node = here
            time.sleep(self.pause)
        deadline = time.time() + 30
        while self.pending and time.time() < deadline:
            self.retry_pending()
            time.sleep(0.2)
        self.node.close()


def load(urls, ctx, connections, out, stop, pause):
    os.makedirs(out, exist_ok=True)
    for name in ("acks.jsonl", "events.jsonl", "double.jsonl"):
        open(os.path.join(out, name), "a").close()
    workers = [Worker(i, urls, ctx, out, stop, pause) for i in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    per_node = {}
    for w in workers:
        for k, v in w.per_node.items():
            per_node[k] = per_node.get(k, 0) + v
    print(json.dumps({"acks": sum(w.acks for w in workers), "failures": sum(w.failures for w in workers),
                      "recertified": sum(w.recertified for w in workers),
                      "doubles": sum(w.doubles for w in workers), "per_node": per_node}))
    return 0


# ---- check ------------------------------------------------------------------------
def get_retrying(node, path):
    """a node still recovering (its store reconnecting) is asked again for up to 15 s"""
    deadline = time.time() + 15
    while True:
        status, data = node.request("GET", path)
        if status not in (0, 503) or time.time() > deadline:
            return status, data
        time.sleep(0.2)


def check(urls, ctx, out):
    problems = []
    acks = [json.loads(line) for line in open(os.path.join(out, "acks.jsonl")) if line.strip()]
    doubles = [line for line in open(os.path.join(out, "double.jsonl")) if line.strip()]
    if doubles:
        problems.append("sessions acknowledged twice (a second 201): %s" % doubles[:3])
    seen = set()
    for a in acks:
        if a["session"] in seen:
            problems.append("session %s acknowledged twice" % a["session"])
        seen.add(a["session"])
    fetched = 0
    for url in urls:
        node = Node(url, ctx)
        status, body = get_retrying(node, "/.well-known/jwks.json")
        if status != 200:
            problems.append("%s: JWKS: HTTP %d" % (url, status))
            continue
        keys = {k["kid"]: jwk.JWK(**{n: k[n] for n in ("kty", "crv", "x", "y")}) for k in json.loads(body)["keys"]}
        for a in acks:
            path = urlparse(a["cert_url"]).path + ".jws"
            status, body = get_retrying(node, path)
            if status != 200:
                problems.append("%s%s: HTTP %d" % (url, path, status))
                continue
            if body.decode().strip() != a["jws"]:
                problems.append("%s%s: not the JWS acknowledged" % (url, path))
                continue
            token = jws.JWS()
            token.deserialize(a["jws"])
            kid = token.jose_header.get("kid")
            try:
                token.verify(keys[kid], alg="ES256")
            except Exception as e:  # a missing kid or a bad signature
                problems.append("%s%s: does not verify under kid %s: %s" % (url, path, kid, e))
                continue
            if json.loads(token.payload).get("generation_session_id") != a["session"]:
                problems.append("%s%s: names another session" % (url, path))
                continue
            fetched += 1
        node.close()
    for p in problems[:20]:
        print("problem: " + p)
    print(json.dumps({"acknowledged": len(acks), "nodes": len(urls), "fetched_and_verified": fetched,
                      "problems": len(problems)}))
    return 1 if problems else 0


def main():
    if len(sys.argv) < 7:
        print(__doc__, file=sys.stderr)
        return 2
    mode, urls, ca, cert, key = sys.argv[1:6]
    urls = [u for u in urls.replace(" ", ",").split(",") if u]
    ctx = context(ca, cert, key)
    if mode == "race":
        return race(urls, ctx, int(sys.argv[6]))
    if mode == "load" and len(sys.argv) >= 9:
        pause = float(sys.argv[9]) if len(sys.argv) > 9 else 0.0
        return load(urls, ctx, int(sys.argv[6]), sys.argv[7], sys.argv[8], pause)
    if mode == "check":
        return check(urls, ctx, sys.argv[6])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
