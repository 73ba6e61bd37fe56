#!/usr/bin/python3
"""Check what crash_load.py saw acknowledged against the daemon and its store.

usage: crash_check.py URL CA CERT KEY OUT_DIR DB

For every acknowledged certificate (OUT_DIR/acks.jsonl): GET CERT_URL.jws
(as CERT/KEY, an auditor) answers 200 with the same compact JWS, which
verifies (ES256, jwcrypto) under its kid in the daemon's JWKS and names
the session; no session was acknowledged twice (double.jsonl empty, no
session in two acks); in the store (DB, read-only), no session has two
certificates and every acknowledged session's certificate is the one
acknowledged. Prints a JSON summary; exits 1 on the first kind of problem
found (each problem printed).
"""
import http.client
import json
import os
import sqlite3
import ssl
import sys
import time
from urllib.parse import urlparse

from jwcrypto import jwk, jws


def main():
    url, ca, cert, key, out, db = sys.argv[1:7]
    u = urlparse(url)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    conn = [None]

    def get(path):
        """(status, body); a connection refused or dropped (a daemon still
        restarting: its TLS handshakes draw on the token) is tried again for
        up to 15 s"""
        deadline = time.time() + 15
        while True:
            try:
                if conn[0] is None:
                    conn[0] = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=20)
                conn[0].request("GET", path)
                r = conn[0].getresponse()
                return r.status, r.read()
            except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError):
                conn[0].close()
                conn[0] = None
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    problems = []
    status, body = get("/.well-known/jwks.json")
    if status != 200:
        print("JWKS: HTTP %d" % status)
        return 1
    keys = {k["kid"]: jwk.JWK(**{n: k[n] for n in ("kty", "crv", "x", "y")})
            for k in json.loads(body)["keys"]}
    acks = [json.loads(line) for line in open(os.path.join(out, "acks.jsonl")) if line.strip()]
    doubles = [line for line in open(os.path.join(out, "double.jsonl")) if line.strip()]
    if doubles:
        problems.append("sessions certified twice (a second 201): %s" % doubles[:3])
    seen = {}
    for a in acks:
        if a["session"] in seen:
            problems.append("session %s acknowledged twice" % a["session"])
        seen[a["session"]] = a
        path = urlparse(a["cert_url"]).path + ".jws"
        status, body = get(path)
        if status != 200:
            problems.append("%s: HTTP %d" % (path, status))
            continue
        if body.decode().strip() != a["jws"]:
            problems.append("%s: not the JWS acknowledged" % path)
            continue
        token = jws.JWS()
        token.deserialize(a["jws"])
        kid = token.jose_header.get("kid")
        try:
            token.verify(keys[kid], alg="ES256")
        except Exception as e:  # a missing kid or a bad signature
            problems.append("%s: does not verify under kid %s: %s" % (path, kid, e))
            continue
        claims = json.loads(token.payload)
        if claims.get("generation_session_id") != a["session"]:
            problems.append("%s: names another session" % path)
    store = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    twice = store.execute("SELECT session_id, COUNT(*) FROM certificates GROUP BY session_id "
                          "HAVING COUNT(*) > 1").fetchall()
    if twice:
        problems.append("sessions with two certificates in the store: %s" % twice[:3])
    for sid, a in seen.items():
        row = store.execute("SELECT id FROM certificates WHERE session_id = ?", (sid,)).fetchone()
        if row is None or not a["cert_url"].endswith("/cert/" + row[0]):
            problems.append("session %s: the store's certificate is %s, not the one acknowledged (%s)"
                            % (sid, row, a["cert_url"]))
    total = store.execute("SELECT COUNT(*) FROM certificates").fetchone()[0]
    for p in problems[:20]:
        print("problem: " + p)
    print(json.dumps({"acknowledged": len(acks), "verified": len(acks) - len(problems),
                      "store_certificates": total, "problems": len(problems)}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
