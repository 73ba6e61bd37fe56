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


def fresh_jwks(out):
    from cryptography.hazmat.primitives.asymmetric import ec
    nums = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    x, y = b64u(nums.x.to_bytes(32, "big")), b64u(nums.y.to_bytes(32, "big"))
    canon = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"), sort_keys=True)
    kid = b64u(hashlib.sha256(canon.encode()).digest())
    key = {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig",
           "status": "active", "activated_at": "2020-01-01T00:00:00.000Z"}
    with open(out, "w") as f:
        json.dump({"keys": [key]}, f)


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
