#!/usr/bin/env python3
"""Write the seed corpus of ipc_fuzz (tests/fuzz/corpus/ipc/): valid frames
of every request and reply type of the key process's protocol
(pkcs11/token_ipc.h), and a few near misses. Run from anywhere:
    tests/fuzz/ipc_seeds.py
"""
import os
import struct

REPLY = 0x8000
HELLO, INFO, RANDOM, FIND_KEY, PUBLIC_KEY, SIGN, MECHANISMS, BIND = range(1, 9)
CERTIFICATE, TLS, PROFILE = 1, 2, 3
CS_E_IPC_LIKE = 3  # CS_E_INVALID_ARG: any known cs_err other than CS_OK


def frame(ftype, payload, flags=0):
    return struct.pack(">HHI", ftype, flags, len(payload)) + payload


def str8(b):
    return bytes([len(b)]) + b


def keyref(label, key_id):
    return str8(label) + str8(key_id)


def purpose(kind, name=b""):
    return bytes([kind]) + str8(name)


def ok(payload=b""):
    return struct.pack(">I", 0) + payload


SEEDS = {
    "req-hello": frame(HELLO, struct.pack(">I", 1)),
    "req-info": frame(INFO, b""),
    "req-random-32": frame(RANDOM, struct.pack(">I", 32)),
    "req-random-2048": frame(RANDOM, struct.pack(">I", 2048)),
    "req-find-key": frame(FIND_KEY, keyref(b"cert-key", bytes.fromhex("0102030405060708"))),
    "req-find-key-label": frame(FIND_KEY, keyref(b"credsign-signing", b"")),
    "req-public-key": frame(PUBLIC_KEY, keyref(b"cert-key", bytes.fromhex("01020304"))),
    "req-sign-certificate": frame(SIGN, purpose(CERTIFICATE) + keyref(b"cert-key", b"\x01\x02") + bytes(range(32))),
    "req-sign-tls": frame(SIGN, purpose(TLS) + keyref(b"tls", b"\x07") + bytes(32)),
    "req-sign-profile": frame(SIGN, purpose(PROFILE, b"rel") + keyref(b"rel-key", b"\x09" * 16) + b"\xaa" * 32),
    "req-mechanisms": frame(MECHANISMS, b""),
    "req-bind-profile": frame(BIND, purpose(PROFILE, b"release.v1_a-b") + keyref(b"rel-key", b"\x09" * 16)),
    "req-bind-certificate": frame(BIND, purpose(CERTIFICATE) + keyref(b"cert-key", b"")),
    "rep-hello": frame(HELLO | REPLY, ok(struct.pack(">II", 1, 256))),
    "rep-info": frame(INFO | REPLY, ok(
        str8(b"cstest") + str8(b"SoftHSM project") + str8(b"SoftHSM v2") + str8(b"0123456789abcdef")
        + bytes([2, 6, 2, 6]) + struct.pack(">Q", 0x40D)
        + str8(b"SoftHSM") + str8(b"Implementation of PKCS11") + bytes([2, 6, 3, 0])
        + struct.pack(">QQQ", 1234567, 3, 1))),
    "rep-random-16": frame(RANDOM | REPLY, ok(bytes(range(16)))),
    "rep-find-key": frame(FIND_KEY | REPLY, ok(keyref(b"cert-key", bytes.fromhex("0102030405060708")))),
    "rep-public-key": frame(PUBLIC_KEY | REPLY, ok(struct.pack(">H", 91) + bytes.fromhex(
        "3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + b"\x11" * 64)),
    "rep-sign": frame(SIGN | REPLY, ok(b"\x22" * 64 + str8(
        b"\x30\x44\x02\x20" + b"\x22" * 32 + b"\x02\x20" + b"\x22" * 32))),
    "rep-mechanisms": frame(MECHANISMS | REPLY, ok(bytes([2])
        + struct.pack(">QBQQQ", 0x1041, 1, 0x3802, 256, 521) + str8(b"")
        + struct.pack(">QBQQQ", 0x1040, 0, 0, 0, 0) + str8(b"token lacks CKM_EC_KEY_PAIR_GEN (generate)"))),
    "rep-bind": frame(BIND | REPLY, ok()),
    "rep-sign-error": frame(SIGN | REPLY, struct.pack(">I", CS_E_IPC_LIKE)),
    # an error reply with its cause: the key process's failing PKCS#11 call
    "rep-sign-error-cause": frame(SIGN | REPLY, struct.pack(">I", CS_E_IPC_LIKE) + str8(b"C_Sign")
                                  + struct.pack(">Q", 0x101)),
    # near misses: one rule broken each
    "bad-flags": frame(HELLO, struct.pack(">I", 1), flags=1),
    "bad-digest-31": frame(SIGN, purpose(CERTIFICATE) + keyref(b"k", b"\x01") + bytes(31)),
    "bad-profile-upper": frame(SIGN, purpose(PROFILE, b"Rel") + keyref(b"k", b"\x01") + bytes(32)),
    "bad-unknown-type": frame(9, b""),
    "bad-trailing": frame(INFO, b"\x00"),
    "bad-cause-name": frame(SIGN | REPLY, struct.pack(">I", CS_E_IPC_LIKE) + str8(b"C_Sign2")
                            + struct.pack(">Q", 0x101)),
    "bad-cause-on-ok": frame(BIND | REPLY, ok() + str8(b"C_Sign") + struct.pack(">Q", 0x101)),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ipc")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
