#!/usr/bin/python3
"""An independent verifier of a credsign audit export (docs/audit.md),
written from the specification alone: every object has exactly its
members; check each checkpoint's ES256 signature with python3-jwcrypto
(a header of alg, kid and typ, a payload of exactly the six members) and
that its other members are its signed payload, recompute the hash chain
from the base (or, for a partial export, from the first entry's own
prev_hash) and check that it passes through every checkpoint's
head_hash; a checkpoint that begins past the last entry means the log was
truncated, one that covers the last entry and ends past it is a page's.
Entries are authenticated up to the last signed head the chain reaches.

usage: audit_reference.py EXPORT.jsonl JWKS.json
prints "intact N signed-through S authenticated A [partial]" or
"broken SEQ REASON"; exit 0 when intact with at least one entry
authenticated, 3 when intact with none, 1 when broken.
"""
import base64
import hashlib
import json
import sys

from jwcrypto import jwk, jws

FIELDS = ("seq", "ts", "node", "actor", "actor_cert_sha256", "role", "action", "object",
          "project", "environment", "outcome", "error_code", "request_id")
SIGNED = ("first_seq", "last_seq", "head_hash", "time", "node", "kind")
MEMBERS = {"entry": set(FIELDS) | {"type", "prev_hash", "entry_hash"},
           "checkpoint": set(SIGNED) | {"type", "jws"}}


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def canonical(entry):
    out = b""
    for name in FIELDS:
        value = entry[name]  # every field is present, null when absent
        if value is None:
            out += b"\xff\xff\xff\xff"
            continue
        data = str(value).encode("utf-8")
        out += len(data).to_bytes(4, "big") + data
    return out


def main():
    lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
    for l in lines:  # no member more or less: nothing unsigned rides along
        if set(l) != MEMBERS.get(l.get("type"), set()):
            print("broken %s members" % l.get("seq", l.get("first_seq")))
            return 1
    entries = [l for l in lines if l["type"] == "entry"]
    checkpoints = {}
    for cp in (l for l in lines if l["type"] == "checkpoint"):
        token = jws.JWS()
        token.deserialize(cp["jws"])
        key = keys[token.jose_header["kid"]]
        token.verify(jwk.JWK(**{n: key[n] for n in ("kty", "crv", "x", "y")}), alg="ES256")
        claims = json.loads(token.payload)
        if token.jose_header["typ"] != "credsign-audit-checkpoint+jwt" or \
                set(token.jose_header) != {"alg", "kid", "typ"} or set(claims) != set(SIGNED) or \
                any(claims[n] != cp[n] for n in SIGNED):
            print("broken %d checkpoint payload" % cp["first_seq"])
            return 1
        checkpoints[(cp["first_seq"], cp["last_seq"], cp["kind"])] = cp  # pages repeat some
    base_seq, running = 0, bytes(32)
    for cp in checkpoints.values():
        if cp["kind"] == "purge" and cp["last_seq"] > base_seq:
            base_seq, running = cp["last_seq"], b64d(cp["head_hash"])
    heads = {cp["last_seq"]: b64d(cp["head_hash"]) for cp in checkpoints.values() if cp["kind"] != "purge"}
    partial = bool(entries) and entries[0]["seq"] > base_seq + 1
    if partial:  # from the first entry's own link
        running = b64d(entries[0]["prev_hash"])
    expected = entries[0]["seq"] if partial else base_seq + 1
    signed = 0
    for e in entries:
        if e["seq"] != expected:
            print("broken %d missing" % expected)
            return 1
        if b64d(e["prev_hash"]) != running:
            print("broken %d does-not-chain" % e["seq"])
            return 1
        running = hashlib.sha256(running + canonical(e)).digest()
        if running != b64d(e["entry_hash"]):
            print("broken %d modified" % e["seq"])
            return 1
        if e["seq"] in heads:
            if heads[e["seq"]] != running:
                print("broken %d checkpoint-mismatch" % e["seq"])
                return 1
            signed = e["seq"]
        expected += 1
    last = expected - 1
    for cp in checkpoints.values():  # past the last entry: a page's, or truncation
        if cp["kind"] != "purge" and cp["last_seq"] > last and not (entries and cp["first_seq"] <= last):
            print("broken %d truncated" % expected)
            return 1
    authenticated = signed - entries[0]["seq"] + 1 if signed else 0
    print("intact %d signed-through %d authenticated %d%s" %
          (len(entries), signed, authenticated, " partial" if partial else ""))
    return 0 if authenticated else 3


sys.exit(main())
