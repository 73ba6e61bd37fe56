#!/usr/bin/env python3
"""Checks a secrets-manager hand-off output of `credsign generate --certify`
(docs/integrations.md) against the certificate the daemon serves.

  handoff_check.py k8s-secret OUTPUT CERT.json NAME NAMESPACE KEY CREDENTIAL_OUT
  handoff_check.py vault-kv   OUTPUT CERT.json KEY CREDENTIAL_OUT
  handoff_check.py terraform  OUTPUT CERT.json

CERT.json is GET /cert/ID (`credsign cert get ID`): its claims give the
certificate's id (jti), preset and certified_at, its issuer + /cert/ + id
the URL. The credential found in OUTPUT is written to CREDENTIAL_OUT
(without a newline) for `credsign verify --credential-file`. Prints what
differs and exits 1, or exits 0.
"""
import json
import sys

import yaml


def claims_of(path):
    doc = json.load(open(path))
    claims = doc.get("claims", doc)
    return claims, claims["iss"] + "/cert/" + claims["jti"]


def fail(msg):
    print("handoff_check: " + msg)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def all_strings(node):
    """Every scalar of the YAML text is a string (quoted): no 'yes'/'on'/
    number coerced by a YAML 1.1 reader."""
    if isinstance(node, dict):
        return all(isinstance(k, str) and all_strings(v) for k, v in node.items())
    return isinstance(node, str)


def k8s(out, cert, name, namespace, key, cred_out):
    text = open(out).read()
    docs = list(yaml.safe_load_all(text))
    expect("YAML documents", len(docs), 1)
    doc = docs[0]
    claims, url = claims_of(cert)
    if not all_strings(doc):
        fail(f"a scalar that is not a string: {doc!r}")
    expect("top-level keys", sorted(doc), ["apiVersion", "kind", "metadata", "stringData", "type"])
    expect("apiVersion", doc["apiVersion"], "v1")
    expect("kind", doc["kind"], "Secret")
    expect("type", doc["type"], "Opaque")
    md = doc["metadata"]
    expect("metadata keys", sorted(md), ["annotations", "labels", "name", "namespace"])
    expect("metadata.name", md["name"], name)
    expect("metadata.namespace", md["namespace"], namespace)
    expect("labels", md["labels"], {"app.kubernetes.io/managed-by": "credsign"})
    expect("annotations", md["annotations"], {
        "credsign.io/cert-url": url,
        "credsign.io/cert-id": claims["jti"],
        "credsign.io/preset": claims["preset"],
        "credsign.io/certified-at": claims["certified_at"],
    })
    expect("stringData keys", list(doc["stringData"]), [key])
    # every scalar written double-quoted (the emitter's style, not only the
    # parsed types): each line's value begins with a quote
    for line in text.splitlines():
        if line in ("---", "...") or not line.strip():
            continue
        body = line.strip()
        if not body.startswith('"') or ('": ' in body and not body.split('": ', 1)[1].startswith('"')):
            fail(f"a scalar not double-quoted: {line!r}")
    open(cred_out, "w").write(doc["stringData"][key])


def vault(out, cert, key, cred_out):
    lines = open(out).read().splitlines()
    expect("lines of output", len(lines), 1)
    doc = json.loads(lines[0])
    claims, url = claims_of(cert)
    expect("top-level keys", sorted(doc), ["data", "metadata"])
    body = doc["data"]
    expect("data keys", sorted(body), ["data", "options"])
    expect("data.options", body["options"], {"cas": 0})
    data = body["data"]
    expect("data.data keys", sorted(data), sorted([key, "cert_url", "cert_id"]))
    expect("data.data.cert_url", data["cert_url"], url)
    expect("data.data.cert_id", data["cert_id"], claims["jti"])
    expect("metadata", doc["metadata"], {"custom_metadata": {
        "credsign.io/cert-url": url,
        "credsign.io/cert-id": claims["jti"],
        "credsign.io/preset": claims["preset"],
    }})
    # Vault's custom_metadata limits: 64 keys, keys <= 128 bytes, values <= 512
    for k, v in doc["metadata"]["custom_metadata"].items():
        if len(k.encode()) > 128 or len(v.encode()) > 512 or not isinstance(v, str):
            fail(f"custom_metadata {k!r} passes Vault's limits")
    if not isinstance(data[key], str) or not data[key]:
        fail("no credential")
    open(cred_out, "w").write(data[key])


def terraform(out, cert):
    """Terraform's external data source: the program prints one JSON object
    whose values are all strings."""
    doc = json.load(open(out))
    claims, url = claims_of(cert)
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        fail(f"not a flat object of strings: {doc!r}")
    expect("keys", sorted(doc), ["cert_id", "cert_url", "credential", "preset"])
    expect("cert_url", doc["cert_url"], url)
    expect("cert_id", doc["cert_id"], claims["jti"])
    expect("preset", doc["preset"], claims["preset"])


def main():
    mode = sys.argv[1]
    if mode == "k8s-secret":
        k8s(*sys.argv[2:8])
    elif mode == "vault-kv":
        vault(*sys.argv[2:6])
    elif mode == "terraform":
        terraform(*sys.argv[2:4])
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
