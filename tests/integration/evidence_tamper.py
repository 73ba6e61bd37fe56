#!/usr/bin/env python3
"""Rewrites an evidence package (a tar) for evidence_verify_test.sh.

  evidence_tamper.py list IN                  the regular files, relative to the top directory
  evidence_tamper.py flip IN OUT PATH         one byte of PATH changed (its middle byte, +1)
  evidence_tamper.py remove IN OUT PATH       PATH left out
  evidence_tamper.py drop-line IN OUT PATH TEXT
                                              the first line of PATH containing TEXT left out
  evidence_tamper.py hostile IN OUT KIND      a member added: dotdot (TOP/../evil), absolute
                                              (/tmp/evil), symlink (TOP/link -> /etc/passwd),
                                              hardlink (TOP/hard -> TOP/README.md), duplicate
                                              (TOP/README.md twice), outside (other/x), fifo
  evidence_tamper.py jwks OUT                 a JWKS of a fresh P-256 key (a different key set)
  evidence_tamper.py resign IN OUT [EDIT...]  a forger's package: the EDITs applied in turn, a fresh key
                                              added to keys/jwks.json, the manifest's hashes, sizes and
                                              counts (audit_entries, chain_entries, inventory_records,
                                              other_project_entries) redone and manifest.jws signed with
                                              the fresh key: it passes every check that trusts the
                                              package's own keys. EDITs:
      drop-line PATH TEXT      the first line of PATH containing TEXT left out
      set PATH KEY VALUE       a JSON file's member set to the string VALUE; KEY is a dotted path
                               whose parts are member names, array indexes or NAME=VALUE (the
                               array element whose member NAME is VALUE): records.cert_id=ID.state
      del PATH KEY             that member (or array element) removed
      replace PATH OLD NEW     the first OLD in PATH (bytes) replaced by NEW
      csv                      inventory/inventory.csv rendered again from inventory.json's records
                               as cs_inventory_csv does (signer/inventory.c)
      append-entry OBJECT      an entry (cert.read of OBJECT, success), chained to the last entry
                               of audit/chain.jsonl (after its last checkpoint), added to
                               chain.jsonl and entries.jsonl
      drop-entry TEXT          the first entry of chain.jsonl containing TEXT left out of both
                               files, the later entries renumbered and re-hashed and every
                               checkpoint redone and signed with the fresh key (entries.jsonl
                               holds the same entries as before, renumbered)
  evidence_tamper.py add IN OUT PATH          a file PATH ("extra") added inside the top directory
  evidence_tamper.py append IN OUT KIND       IN's bytes then: tar (a tar of TOP/evil: a member after
                                              the end-of-archive blocks), byte (one 'x'), zeros (10240
                                              zero bytes, a tar record's padding)

Every other member is copied byte for byte, in order, as a pax tar.
"""
import base64
import hashlib
import io
import json
import sys
import tarfile


def members(path):
    with tarfile.open(path, "r:") as t:
        out = []
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isreg() else None
            out.append((m, data))
        return out


def top_of(ms):
    return ms[0][0].name.split("/")[0]


def rel(top, m):
    return m.name[len(top) + 1:] if m.name.startswith(top + "/") else None


def write(out, ms):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for m, data in ms:
            if data is not None:
                m.size = len(data)
                t.addfile(m, io.BytesIO(data))
            else:
                t.addfile(m)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def fresh_key():
    """A fresh P-256 key and its JWK (kid the RFC 7638 thumbprint, active since 2020)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    priv = ec.generate_private_key(ec.SECP256R1())
    nums = priv.public_key().public_numbers()
    x, y = b64u(nums.x.to_bytes(32, "big")), b64u(nums.y.to_bytes(32, "big"))
    canon = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"), sort_keys=True)
    kid = b64u(hashlib.sha256(canon.encode()).digest())
    key = {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig",
           "status": "active", "activated_at": "2020-01-01T00:00:00.000Z"}
    return priv, key


def fresh_jwks(out):
    with open(out, "w") as f:
        json.dump({"keys": [fresh_key()[1]]}, f)


def es256(priv, header, payload):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    signing = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(payload)
    r, s = decode_dss_signature(priv.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
    return signing + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


CSV_COLUMNS = ("project", "environment", "system", "state", "cert_id", "cert_url", "type", "preset", "standards",
               "certified_at", "requester", "rotation_due", "rotation_rule", "rotation", "superseded_by",
               "revoked_at", "revocation_reason")


def csv_field(text):
    """One quoted field as cs_inventory_csv writes it (formula-injection prefix, quotes doubled)."""
    return '"' + ("'" if text[:1] in ("=", "+", "-", "@", "\t", "\r") and text else "") + \
        text.replace('"', '""') + '"'


def csv_value(v):
    if v is None:
        return ""
    if isinstance(v, str):
        return csv_field(v)
    if isinstance(v, list):
        return csv_field("; ".join(e for e in v if isinstance(e, str)))
    return csv_field(json.dumps(v, separators=(",", ":"), ensure_ascii=False))


def inventory_csv(records):
    rows = [",".join(csv_field(c) for c in CSV_COLUMNS)]
    rows += [",".join(csv_value(r.get(c)) for c in CSV_COLUMNS) for r in records]
    return ("\r\n".join(rows) + "\r\n").encode()


def dumps(doc, sort=False):
    return json.dumps(doc, separators=(",", ":"), sort_keys=sort, ensure_ascii=False).encode()


def walk(doc, key):
    """The container holding KEY's last part, and that part (an int index for an array)."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        if isinstance(doc, list):
            if "=" in part:
                name, value = part.split("=", 1)
                hit = [k for k, e in enumerate(doc) if isinstance(e, dict) and e.get(name) == value]
                if not hit:
                    raise SystemExit("no element with %s" % part)
                part = hit[0]
            else:
                part = int(part)
        if i == len(parts) - 1:
            return doc, part
        doc = doc[part]


FIELDS = ("seq", "ts", "node", "actor", "actor_cert_sha256", "role", "action", "object",
          "project", "environment", "outcome", "error_code", "request_id")


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def entry_hash(prev, entry):
    """docs/audit.md "Canonical encoding": SHA-256(prev_hash || canonical(entry)), base64url."""
    out = b64d(prev)
    for name in FIELDS:
        value = entry[name]
        if value is None:
            out += b"\xff\xff\xff\xff"
        else:
            data = str(value).encode()
            out += len(data).to_bytes(4, "big") + data
    return b64u(hashlib.sha256(out).digest())


def chain_lines(data):
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


def jsonl(objs):
    return b"".join(dumps(o, sort=True) + b"\n" for o in objs)


def append_entry(files, obj):
    lines = chain_lines(files["audit/chain.jsonl"])
    entries = [o for o in lines if o["type"] == "entry"]
    last = entries[-1]
    new = dict(last, seq=last["seq"] + 1, ts=last["ts"][:20] + "999Z", action="cert.read", object=obj,
               outcome="success", error_code=None, project=None, environment=None, prev_hash=last["entry_hash"])
    new["entry_hash"] = entry_hash(new["prev_hash"], new)
    at = lines.index(last) + 1
    files["audit/chain.jsonl"] = jsonl(lines[:at] + [new] + lines[at:])
    files["audit/entries.jsonl"] += dumps(new, sort=True) + b"\n"


def drop_entry(files, text, priv, kid):
    lines = chain_lines(files["audit/chain.jsonl"])
    raw = [line for line in files["audit/chain.jsonl"].split(b"\n") if line.strip()]
    hit = [i for i, line in enumerate(raw) if text.encode() in line and lines[i]["type"] == "entry"]
    if not hit:
        raise SystemExit("no entry with " + text)
    gone = lines[hit[0]]["seq"]
    kept = set(files["audit/entries.jsonl"].split(b"\n"))
    in_entries = [line in kept for line in raw]
    out, scoped, prev, heads = [], [], None, {}
    for i, o in enumerate(lines):
        if o["type"] != "entry" or o["seq"] == gone:
            continue
        o = dict(o)
        if o["seq"] > gone:
            o["seq"] -= 1
        o["prev_hash"] = prev if prev is not None else o["prev_hash"]
        o["entry_hash"] = prev = entry_hash(o["prev_hash"], o)
        heads[o["seq"]] = prev
        out.append(o)
        if in_entries[i]:
            scoped.append(o)
    for o in lines:
        if o["type"] != "checkpoint":
            continue
        o = dict(o)
        o["first_seq"] -= o["first_seq"] > gone
        o["last_seq"] -= o["last_seq"] >= gone
        if o["first_seq"] > o["last_seq"]:
            continue  # it covered only the entry left out
        if o["kind"] != "purge" and o["last_seq"] in heads:
            o["head_hash"] = heads[o["last_seq"]]
        payload = {n: o[n] for n in ("first_seq", "head_hash", "kind", "last_seq", "node", "time")}
        o["jws"] = es256(priv, {"alg": "ES256", "kid": kid, "typ": "credsign-audit-checkpoint+jwt"},
                         dumps(payload, sort=True))
        out.append(o)
    files["audit/chain.jsonl"] = jsonl(out)
    files["audit/entries.jsonl"] = jsonl(scoped)


def resign(ms, top, edits):
    """ms with the edits applied and the manifest redone, signed by a fresh key added to keys/jwks.json."""
    files = {rel(top, m): data for m, data in ms if m.isreg()}
    priv, key = fresh_key()
    while edits:
        op, edits = edits[0], edits[1:]
        if op == "drop-line":
            path, text, edits = edits[0], edits[1], edits[2:]
            lines = files[path].split(b"\n")
            hit = [i for i, line in enumerate(lines) if text.encode() in line]
            if not hit:
                raise SystemExit("no line with " + text)
            del lines[hit[0]]
            files[path] = b"\n".join(lines)
        elif op in ("set", "del"):
            path, name = edits[0], edits[1]
            doc = json.loads(files[path])
            where, part = walk(doc, name)
            if op == "set":
                where[part], edits = edits[2], edits[3:]
            else:
                del where[part]
                edits = edits[2:]
            files[path] = dumps(doc, sort=path == "manifest.json")
        elif op == "replace":
            path, old, new, edits = edits[0], edits[1].encode(), edits[2].encode(), edits[3:]
            if old not in files[path]:
                raise SystemExit("no %r in %s" % (old, path))
            files[path] = files[path].replace(old, new, 1)
        elif op == "csv":
            files["inventory/inventory.csv"] = inventory_csv(json.loads(files["inventory/inventory.json"])["records"])
        elif op == "append-entry":
            append_entry(files, edits[0])
            edits = edits[1:]
        elif op == "drop-entry":
            drop_entry(files, edits[0], priv, key["kid"])
            edits = edits[1:]
        else:
            raise SystemExit("unknown edit " + op)
    jwks = json.loads(files["keys/jwks.json"])
    jwks["keys"].append(key)
    files["keys/jwks.json"] = json.dumps(jwks, separators=(",", ":"), sort_keys=True).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = [{"path": f["path"], "sha256": hashlib.sha256(files[f["path"]]).hexdigest(),
                          "size": len(files[f["path"]])} for f in manifest["files"]]
    counts = manifest["counts"]
    counts["audit_entries"] = len(chain_lines(files["audit/entries.jsonl"]))
    chain = [o for o in chain_lines(files["audit/chain.jsonl"]) if o["type"] == "entry"]
    counts["chain_entries"] = len(chain)
    counts["other_project_entries"] = sum(o["project"] != manifest["scope"]["project"] for o in chain)
    counts["inventory_records"] = len(json.loads(files["inventory/inventory.json"])["records"])
    files["manifest.json"] = dumps(manifest, sort=True)
    signed = {"iss": manifest["iss"], "created_at": manifest["created_at"],
              "manifest_sha256": hashlib.sha256(files["manifest.json"]).hexdigest()}
    files["manifest.jws"] = es256(priv, {"alg": "ES256", "kid": key["kid"], "typ": "credsign-evidence+jwt"},
                                  json.dumps(signed, separators=(",", ":")).encode()).encode()
    return [(m, files[rel(top, m)] if m.isreg() else data) for m, data in ms]


def main(argv):
    op = argv[1]
    if op == "jwks":
        fresh_jwks(argv[2])
        return 0
    ms = members(argv[2])
    top = top_of(ms)
    if op == "list":
        for m, data in ms:
            if m.isreg():
                print(rel(top, m))
        return 0
    out = argv[3]
    if op == "resign":
        write(out, resign(ms, top, argv[4:]))
        return 0
    if op == "add":
        info = tarfile.TarInfo(top + "/" + argv[4])
        info.mode = 0o644
        write(out, ms + [(info, b"extra\n")])
        return 0
    if op == "append":
        with open(argv[2], "rb") as f:
            data = f.read()
        if argv[4] == "tar":
            extra = io.BytesIO()
            with tarfile.open(fileobj=extra, mode="w", format=tarfile.PAX_FORMAT) as t:
                info = tarfile.TarInfo(top + "/evil")
                info.size, info.mode = 5, 0o644
                t.addfile(info, io.BytesIO(b"evil\n"))
            data += extra.getvalue()
        elif argv[4] == "byte":
            data += b"x"
        elif argv[4] == "zeros":
            data += bytes(10240)
        else:
            print("unknown kind " + argv[4], file=sys.stderr)
            return 2
        with open(out, "wb") as f:
            f.write(data)
        return 0
    if op in ("flip", "remove", "drop-line"):
        target = top + "/" + argv[4]
        if not any(m.name == target for m, _ in ms):
            print("no member " + target, file=sys.stderr)
            return 1
        res = []
        for m, data in ms:
            if m.name == target:
                if op == "remove":
                    continue
                if op == "flip":
                    b = bytearray(data)
                    i = len(b) // 2
                    b[i] = (b[i] + 1) % 256
                    data = bytes(b)
                else:
                    lines = data.split(b"\n")
                    hit = [i for i, line in enumerate(lines) if argv[5].encode() in line]
                    if not hit:
                        print("no line with " + argv[5], file=sys.stderr)
                        return 1
                    del lines[hit[0]]
                    data = b"\n".join(lines)
            res.append((m, data))
        write(out, res)
        return 0
    if op == "hostile":
        kind = argv[4]
        extra = tarfile.TarInfo()
        data = b"evil\n"
        if kind == "dotdot":
            extra.name = top + "/../evil"
        elif kind == "absolute":
            extra.name = "/tmp/evil"
        elif kind == "symlink":
            extra.name, extra.type, extra.linkname, data = top + "/link", tarfile.SYMTYPE, "/etc/passwd", None
        elif kind == "hardlink":
            extra.name, extra.type, extra.linkname, data = top + "/hard", tarfile.LNKTYPE, top + "/README.md", None
        elif kind == "duplicate":
            extra.name = top + "/README.md"
        elif kind == "outside":
            extra.name = "other/x"
        elif kind == "fifo":
            extra.name, extra.type, data = top + "/fifo", tarfile.FIFOTYPE, None
        else:
            print("unknown kind " + kind, file=sys.stderr)
            return 2
        extra.mode = 0o644
        write(out, ms + [(extra, data)])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
