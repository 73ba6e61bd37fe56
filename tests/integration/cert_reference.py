#!/usr/bin/python3
"""An independent verifier of credsign compliance certificates, written from
the README's certificate section alone: the ES256 signature and kid, the
claims' shape (every claim present, null when it does not apply), the
commitment, the length, character set, classes and run limits, the exact
entropy, the preset's hash and version, the word list's stable id.

usage: cert_reference.py CASES.json JWKS.json PRESETS.json
CASES.json: [{"jws": ..., "credential": ...}, ...]
prints one line per certificate; exit 0 only when all verify.
"""
import base64
import hashlib
import hmac
import json
import math
import re
import sys
from collections import defaultdict

from jwcrypto import jwk, jws

TOP = ("iss", "jti", "iat", "preset", "preset_version", "preset_sha256", "standards", "strength_bits",
       "credential", "entropy_source", "subject", "project", "environment", "system",
       "generation_session_id", "generated_at", "certified_at")
ALL_TYPES = ("type", "length", "length_unit", "entropy_bits", "entropy_method", "commitment")
CHARACTERS = ("charset", "classes", "max_identical_run", "max_class_run", "prefix")
WORDS = ("separator", "wordlist")
CLASSES = ("upper", "lower", "digit", "special")


def b64d(s):
    assert "=" not in s
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def char_class(c):
    if "A" <= c <= "Z":
        return 0
    if "a" <= c <= "z":
        return 1
    if "0" <= c <= "9":
        return 2
    return 3  # special: every other character of the charset


def count(charset, length, classes, max_identical, max_class):
    """The exact number of strings meeting the classes and run limits."""
    sizes = [0] * 4
    for c in charset:
        sizes[char_class(c)] += 1
    cur = defaultdict(int)  # (classes seen, last class, class run, identical run)
    for c in range(4):
        if sizes[c]:
            cur[(1 << c, c, 1, 1)] += sizes[c]
    for _ in range(length - 1):
        nxt = defaultdict(int)
        for (m, c, r, k), v in cur.items():
            for d in range(4):
                if not sizes[d]:
                    continue
                if d != c:
                    nxt[(m | 1 << d, d, 1, 1)] += v * sizes[d]
                    continue
                if max_class is not None and r + 1 > max_class:
                    continue
                nxt[(m | 1 << d, d, r + 1, 1)] += v * (sizes[d] - 1)  # same class, another character
                if max_identical is None or k + 1 <= max_identical:
                    nxt[(m | 1 << d, d, r + 1, k + 1)] += v  # the same character again
        cur = nxt
    need = sum(1 << CLASSES.index(c) for c in classes)
    return sum(v for (m, _, _, _), v in cur.items() if m & need == need)


def runs_ok(s, max_identical, max_class):
    ident = run = 0
    for i, c in enumerate(s):
        ident = ident + 1 if i and s[i - 1] == c else 1
        run = run + 1 if i and char_class(s[i - 1]) == char_class(c) else 1
        if (max_identical is not None and ident > max_identical) or (max_class is not None and run > max_class):
            return False
    return True


def preset_hash(listed):
    d = {k: v for k, v in listed.items() if k not in ("sha256", "source", "enforced_min_length")}
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(text).hexdigest()


def verify(case, keys, presets):
    token = jws.JWS()
    token.deserialize(case["jws"])
    header = token.jose_header
    key = keys[header["kid"]]
    pub = jwk.JWK(**{n: key[n] for n in ("kty", "crv", "x", "y")})
    assert pub.thumbprint() == header["kid"], "kid is not the key's RFC 7638 thumbprint"
    token.verify(pub, alg="ES256")
    assert header["typ"] == "credsign-cert+jwt"
    c = json.loads(token.payload)
    missing = [n for n in TOP if n not in c]
    assert not missing, "claims left out: %s" % missing
    # node: the node that certified (server.node_id); absent from certificates older than it
    if "node" in c:
        assert isinstance(c["node"], str) and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", c["node"]), \
            "node is not a node id: %r" % (c["node"],)
    k = c["credential"]
    cred = case["credential"]
    missing = [n for n in ALL_TYPES if n not in k]
    assert not missing, "credential members left out: %s" % missing
    # the commitment: HMAC-SHA-256, key the decoded salt, message the credential's UTF-8 bytes
    salt = b64d(k["commitment"]["salt"])
    assert k["commitment"]["alg"] == "HMAC-SHA-256" and len(salt) == 16
    assert b64e(hmac.new(salt, cred.encode("utf-8"), hashlib.sha256).digest()) == k["commitment"]["value"], \
        "commitment"
    # the preset: its hash and version
    p = presets[c["preset"]]
    assert c["preset_sha256"] == preset_hash(p) == p["sha256"], "preset_sha256"
    assert c["preset_version"] == p["version"] and c["standards"] == p["standards"]
    if k["length_unit"] == "words":
        missing = [n for n in WORDS if n not in k]
        assert not missing, "passphrase members left out: %s" % missing
        w = k["wordlist"]
        assert "/" not in w["id"] and w["id"] == "wordlist_en_eff", "wordlist.id %r" % w["id"]
        bits = math.floor(k["length"] * math.log2(w["size"]) * 100) / 100
    else:
        assert k["length_unit"] == "characters"
        missing = [n for n in CHARACTERS if n not in k]
        assert not missing, "character members left out: %s" % missing
        body = cred
        if k["prefix"] is not None:  # prefix "_" random part; length counts the random part
            assert k["type"] == "api-key" and cred.startswith(k["prefix"] + "_"), "prefix"
            body = cred[len(k["prefix"]) + 1:]
        assert len(body) == k["length"], "length"
        assert all(ch in k["charset"] for ch in body), "charset"
        for name in k["classes"]:
            assert any(char_class(ch) == CLASSES.index(name) for ch in body), name
        assert runs_ok(body, k["max_identical_run"], k["max_class_run"]), "run limits"
        n = count(k["charset"], k["length"], k["classes"], k["max_identical_run"], k["max_class_run"])
        bits = math.floor(math.log2(n) * 100) / 100
    assert bits == k["entropy_bits"], "entropy_bits %r, recomputed %r" % (k["entropy_bits"], bits)
    return "%s %s %d %s: %.2f bits" % (c["preset"], k["type"], k["length"], k["length_unit"], bits)


def main():
    cases = json.load(open(sys.argv[1]))
    keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
    presets = {p["name"]: p for p in json.load(open(sys.argv[3]))["presets"]}
    bad = 0
    for case in cases:
        try:
            print("ok " + verify(case, keys, presets))
        except Exception as e:  # noqa: BLE001 -- any failure is a bad certificate
            bad += 1
            print("BAD %s: %s" % (type(e).__name__, e))
    return 1 if bad or not cases else 0


sys.exit(main())
