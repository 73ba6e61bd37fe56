#!/usr/bin/python3
"""Hostile and careless peers against a credsignd on 127.0.0.x (tests only).

Every subcommand targets loopback, is bounded in count and time, and prints
one JSON object with what it saw. Debian's python3 (for cryptography).

  certs DIR CA_PEM CA_KEY           test certificates (below) in DIR
  flood PORT COUNT SECONDS [SRC]    hold COUNT bare TCP connections, reopen
                                    the ones the server closed, every second
  evicted PORT COUNT [SRC]          open COUNT bare connections, wait 2 s,
                                    count the ones the server closed
  silent PORT                       one bare connection: seconds until closed
  trickle PORT CA CERT KEY GAP      handshake, then one header byte every GAP s
  lifetime PORT CA CERT KEY GAP SECONDS
                                    keep-alive GETs every GAP s: when and how
                                    the server ended the connection
  raw PORT CA CERT KEY FILE         send FILE's bytes, read until closed
  badhandshakes PORT CA CERT KEY COUNT
                                    COUNT handshakes that must be refused
  fakekey CERT OUT                  a key file (made now) pairing a random private scalar
                                    with CERT's public point (passes the
                                    key/certificate check; proves nothing)
  pipeline PORT CA CERT KEY SECONDS send pipelined GETs without reading the
                                    answers; prints the bytes sent
  hold PORT CA CERT KEY COUNT       open COUNT authenticated keep-alive
                                    connections; how many the server kept
  connectclose PORT COUNT           COUNT connections closed at once
"""
import datetime
import json
import os
import re
import resource
import select
import subprocess
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def out(**kw):
    print(json.dumps(kw))


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bare(port, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.setblocking(False)
    try:
        s.connect((HOST, port))
    except BlockingIOError:
        pass
    return s


def closed_by_peer(s):
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def tls_client(port, ca, cert, key, timeout=5.0):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    s = socket.create_connection((HOST, port), timeout=timeout)
    return ctx.wrap_socket(s, server_hostname="localhost")


def certs(d, ca_pem, ca_key):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(open(ca_pem, "rb").read())
    cakey = serialization.load_pem_private_key(open(ca_key, "rb").read(), None)
    now = datetime.datetime.utcnow()

    def make(name, cn, uri=None, self_signed=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)])
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(subject if self_signed else ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False))
        sans = [x509.RFC822Name("unused@invalid.test")]
        if uri:
            sans = [x509.UniformResourceIdentifier(uri)]
        b = b.add_extension(x509.SubjectAlternativeName(sans), False)
        cert = b.sign(key if self_signed else cakey, hashes.SHA256())
        open(os.path.join(d, name + ".pem"), "wb").write(cert.public_bytes(serialization.Encoding.PEM))
        kf = os.path.join(d, name + ".key")
        open(kf, "wb").write(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        os.chmod(kf, 0o600)

    make("selfsigned", "auditor", uri="spiffe://credsign.test/auditor", self_signed=True)
    make("cn-uri", "spiffe://credsign.test/auditor")
    make("cn-plain", "legacy-client")
    make("cn-long", "l" * 300)
    make("cn-nul", "legacy\x00client")
    make("uri-space", "uri-space", uri="spiffe://credsign.test/auditor ")
    make("cn-space", " spiffe://credsign.test/auditor")
    out(ok=True)


def flood(port, count, seconds, src=None):
    raise_fd_limit()
    socks = [bare(port, src) for _ in range(count)]
    reopened = 0
    end = time.time() + seconds
    while time.time() < end:
        for i, s in enumerate(socks):
            if closed_by_peer(s):
                s.close()
                socks[i] = bare(port, src)
                reopened += 1
        time.sleep(1.0)
    open_now = sum(1 for s in socks if not closed_by_peer(s))
    for s in socks:
        s.close()
    out(held=count, reopened=reopened, open_at_end=open_now)


def evicted(port, count, src=None):
    raise_fd_limit()
    socks = []
    for _ in range(count):
        socks.append(bare(port, src))
        time.sleep(0.02)  # admitted in order, the first ones past the 100 ms grace
    time.sleep(0.3)  # within the handshake deadline
    closed = [i for i, s in enumerate(socks) if closed_by_peer(s)]
    for s in socks:
        s.close()
    out(opened=count, closed=len(closed), closed_first=closed[:3], kept_newest=(count - 1) not in closed)


def silent(port):
    s = socket.create_connection((HOST, port))
    t0 = time.time()
    s.settimeout(30)
    try:
        s.recv(1)
    except OSError:
        pass
    out(closed_after=round(time.time() - t0, 3))


def trickle(port, ca, cert, key, gap):
    s = tls_client(port, ca, cert, key)
    s.settimeout(30)
    t0 = time.time()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    got = b""
    while time.time() - t0 < 30:
        r, _, _ = select.select([s], [], [], gap)
        if r:
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            got += chunk
            continue
        try:
            s.sendall(b"a")
        except OSError:
            break
    out(closed_after=round(time.time() - t0, 3), answer=got.decode("latin-1")[:200])


def lifetime(port, ca, cert, key, gap, seconds):
    s = tls_client(port, ca, cert, key)
    s.settimeout(5)
    t0 = time.time()
    answers, close_header, ended = 0, False, None
    f = s.makefile("rb")
    while time.time() - t0 < seconds:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status = f.readline()
            if not status:
                ended = "eof"
                break
            length = 0
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v)
                if k.lower() == "connection" and v.strip().lower() == "close":
                    close_header = True
            f.read(length)
            answers += 1
            if close_header:
                ended = "connection-close"
                break
        except OSError as e:
            ended = "error: %s" % e
            break
        time.sleep(gap)
    out(answers=answers, ended=ended, after=round(time.time() - t0, 3), close_header=close_header)


def raw(port, ca, cert, key, path):
    s = tls_client(port, ca, cert, key)
    s.settimeout(3)
    s.sendall(open(path, "rb").read())
    got = b""
    closed = False
    t0 = time.time()
    while time.time() - t0 < 4:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        got += chunk
    out(closed=closed, responses=count_responses(got), answer=got.decode("latin-1")[:2000])


def count_responses(data):
    """Responses in a byte stream, each framed by its Content-Length."""
    n = 0
    while data.startswith(b"HTTP/1."):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        length = int(m.group(1)) if m else 0
        data = rest[length:]
        n += 1
    return n


def badhandshakes(port, ca, cert, key, count):
    refused = 0
    for _ in range(count):
        try:
            s = tls_client(port, ca, cert, key)
            # TLS 1.3: the client learns of the refusal on its first read
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if s.recv(100) == b"":
                refused += 1
            s.close()
        except (ssl.SSLError, OSError):
            refused += 1
    out(attempted=count, refused=refused)


def fakekey(cert_path, out_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    point = cert.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)

    def tlv(tag, body):
        n = len(body)
        length = bytes([n]) if n < 128 else bytes([0x81, n])
        return bytes([tag]) + length + body
    p256 = bytes.fromhex("06082a8648ce3d030107")
    der = tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, os.urandom(32)) + tlv(0xa0, p256) +
              tlv(0xa1, tlv(0x03, b"\x00" + point)))
    # DER on disk, converted by the openssl command: the key is made here,
    # at test time, never kept in the tree
    der_path = out_path + ".der"
    with open(der_path, "wb") as f:
        f.write(der)
    os.chmod(der_path, 0o600)
    subprocess.run(["openssl", "ec", "-inform", "DER", "-in", der_path, "-out", out_path],
                   check=True, capture_output=True)
    os.unlink(der_path)
    os.chmod(out_path, 0o600)
    out(ok=True)


def pipeline(port, ca, cert, key, seconds):
    s = tls_client(port, ca, cert, key)
    s.setblocking(False)
    chunk = b"GET /api/presets HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2000
    sent, end = 0, time.time() + seconds
    while time.time() < end:
        try:
            sent += s.send(chunk)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            time.sleep(0.01)
        except OSError:
            break
    s.close()
    out(sent=sent)


def hold(port, ca, cert, key, count):
    socks, kept = [], 0
    for _ in range(count):
        try:
            s = tls_client(port, ca, cert, key)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            s.settimeout(3)
            if s.recv(4096):
                kept += 1
            socks.append(s)
        except OSError:
            pass
    for s in socks:
        s.close()
    out(opened=count, served=kept)


def connectclose(port, count):
    for _ in range(count):
        socket.create_connection((HOST, port)).close()
    out(closed=count)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "certs":
        certs(*args)
    elif cmd == "flood":
        flood(int(args[0]), int(args[1]), float(args[2]), args[3] if len(args) > 3 else None)
    elif cmd == "evicted":
        evicted(int(args[0]), int(args[1]), args[2] if len(args) > 2 else None)
    elif cmd == "silent":
        silent(int(args[0]))
    elif cmd == "trickle":
        trickle(int(args[0]), args[1], args[2], args[3], float(args[4]))
    elif cmd == "lifetime":
        lifetime(int(args[0]), args[1], args[2], args[3], float(args[4]), float(args[5]))
    elif cmd == "raw":
        raw(int(args[0]), args[1], args[2], args[3], args[4])
    elif cmd == "fakekey":
        fakekey(*args)
    elif cmd == "pipeline":
        pipeline(int(args[0]), args[1], args[2], args[3], float(args[4]))
    elif cmd == "hold":
        hold(int(args[0]), args[1], args[2], args[3], int(args[4]))
    elif cmd == "connectclose":
        connectclose(int(args[0]), int(args[1]))
    elif cmd == "badhandshakes":
        badhandshakes(int(args[0]), args[1], args[2], args[3], int(args[4]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
