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
  evidence_tamper.py resign IN OUT [EDIT]     a forger's package: EDIT applied (drop-line PATH TEXT,
                                              or set PATH KEY VALUE: a JSON file's member set to the
                                              string VALUE), a fresh key added to keys/jwks.json, the
                                              manifest's hashes, sizes and counts.audit_entries redone
                                              and manifest.jws signed with the fresh key: it passes
                                              every check that trusts the package's own keys
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


def resign(ms, top, edit):
    """ms with edit applied and the manifest redone, signed by a fresh key added to keys/jwks.json."""
    files = {rel(top, m): data for m, data in ms if m.isreg()}
    if edit and edit[0] == "drop-line":
        lines = files[edit[1]].split(b"\n")
        hit = [i for i, line in enumerate(lines) if edit[2].encode() in line]
        if not hit:
            raise SystemExit("no line with " + edit[2])
        del lines[hit[0]]
        files[edit[1]] = b"\n".join(lines)
    elif edit and edit[0] == "set":
        doc = json.loads(files[edit[1]])
        doc[edit[2]] = edit[3]
        files[edit[1]] = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    elif edit:
        raise SystemExit("unknown edit " + edit[0])
    priv, key = fresh_key()
    jwks = json.loads(files["keys/jwks.json"])
    jwks["keys"].append(key)
    files["keys/jwks.json"] = json.dumps(jwks, separators=(",", ":"), sort_keys=True).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = [{"path": f["path"], "sha256": hashlib.sha256(files[f["path"]]).hexdigest(),
                          "size": len(files[f["path"]])} for f in manifest["files"]]
    entries = files["audit/entries.jsonl"]
    manifest["counts"]["audit_entries"] = entries.count(b"\n") + (0 if entries.endswith(b"\n") or not entries
                                                                   else 1)
    files["manifest.json"] = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
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
