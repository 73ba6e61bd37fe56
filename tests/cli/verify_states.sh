#!/usr/bin/env bash
# credsign verify and the signing key's state, x5c and revocation, from
# fixtures made offline with python3-jwcrypto (a P-256 key, a JWKS with
# status and compromised_at, certificates with the claims credsignd issues,
# revocation lists, X.509 chains for x5c): each refusal names its reason
# "NOT VERIFIED (CODE):" and exits 1; a clean certificate (also of a retired
# key, also with a matching x5c, also with a credential) still verifies. A
# certificate (and a revocation list) must be signed while its key was
# active by the JWKS's activated_at/retired_at, give or take 300 s; an x5c
# chain is validated only against --x5c-ca, at certified_at. --online fetches the
# JWKS and /.well-known/credsign-revocations over mutual TLS from a small
# python3 HTTPS server with the development PKI.
#
#   verify_states.sh CREDSIGN PKI_DIR
set -uo pipefail
credsign=$(realpath "${1:?usage: verify_states.sh CREDSIGN PKI_DIR}")
pki=$(realpath "${2:?}")
py=/usr/bin/python3
tmp=$(mktemp -d)
server=
cleanup() {
	[ -z "$server" ] || kill "$server" 2> /dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1
unset CREDSIGN_URL CREDSIGN_CACERT CREDSIGN_CA CREDSIGN_CERT CREDSIGN_KEY

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what"
		sed 's/^/    /' out.txt err.txt 2> /dev/null
	fi
}
# verify WANT_RC ARGS...: credsign verify ARGS, its exit status WANT_RC
verify() {
	local want=$1 rc=0
	shift
	"$credsign" "$@" > out.txt 2> err.txt || rc=$?
	[ "$rc" -eq "$want" ] || { echo "  credsign $*: exit $rc, want $want"; return 1; }
}
# refused CODE TEXT ARGS...: exit 1 and exactly "credsign: NOT VERIFIED (CODE): TEXT..."
refused() {
	local code=$1 text=$2
	shift 2
	verify 1 "$@" || return 1
	grep -qF -- "credsign: NOT VERIFIED ($code): $text" err.txt ||
		{ echo "  no \"NOT VERIFIED ($code): $text\""; return 1; }
	[ "$(grep -c "NOT VERIFIED" err.txt)" -eq 1 ] || { echo "  not reported exactly once"; return 1; }
	! grep -q "^VERIFIED" out.txt || { echo "  VERIFIED printed"; return 1; }
}
verified() { # verified ARGS...: exit 0, "VERIFIED certificate ID"
	verify 0 "$@" && grep -q "^VERIFIED certificate $cert_id\$" out.txt && [ ! -s err.txt ]
}

# ---- fixtures -----------------------------------------------------------------------
"$py" - <<'PY' || { echo "FAIL: the fixtures (python3-jwcrypto)"; exit 1; }
import base64, copy, datetime, hashlib, hmac, json, time
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jws

now = int(time.time())
iss = "https://credsign.test:8443"
cert_id = "0a1b2c3d4e5f6g7h8j9k0m1n2p"
other_id = "zz1b2c3d4e5f6g7h8j9k0m1n2p"
credential = "Xk4#pq9Lm2vR7tZs"
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def new_key():
    k = jwk.JWK.generate(kty="EC", crv="P-256")
    return k, k.thumbprint()  # RFC 7638, SHA-256

signer, signer_kid = new_key()      # signs the certificates
other, other_kid = new_key()        # in no JWKS
bad, bad_kid = new_key()            # in the JWKS, compromised

signer2, signer2_kid = new_key()    # the signer's successor
iso = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
certified = now - 60                # the certificates' certified_at and iat
grace = 300                         # KEY_SWITCH_GRACE_S of tools/credsign.c

def public(k, kid, **members):
    d = json.loads(k.export_public())
    d.update({"kid": kid, "alg": "ES256", "use": "sig"}, **members)
    return d

def write(name, text):
    open(name, "w").write(text + "\n")

def jwks(name, *keys):
    write(name, json.dumps({"keys": list(keys)}))

active = public(signer, signer_kid, status="active", created_at="2026-01-01T00:00:00.000Z",
                activated_at="2026-01-01T00:00:00.000Z")
compromised = public(bad, bad_kid, status="compromised", activated_at="2025-06-01T00:00:00.000Z",
                     retired_at="2026-01-01T00:00:00.000Z", compromised_at="2026-02-03T04:05:06.789Z")
jwks("jwks.json", active, compromised)
jwks("jwks-retired.json", dict(active, status="retired", retired_at=iso(now - 30)), compromised)
# the key's active period against certified_at (now - 60), 300 s of grace each side
jwks("jwks-retired-before.json", dict(active, status="retired", retired_at=iso(certified - grace - 1)))
jwks("jwks-retired-grace.json", dict(active, status="retired", retired_at=iso(certified - grace + 60)))
jwks("jwks-activated-after.json", dict(active, activated_at=iso(certified + grace + 1)))
jwks("jwks-activated-grace.json", dict(active, activated_at=iso(certified + grace - 60)))
jwks("jwks-retired-nodates.json", {k: v for k, v in dict(active, status="retired").items()
                                   if k not in ("created_at", "activated_at")})
jwks("jwks-baddate.json", dict(active, activated_at="yesterday"))
jwks("jwks-backwards.json", dict(active, status="retired", retired_at="2025-12-31T00:00:00.000Z"))
# a rotation long ago: the signer retired, signer2 active since
jwks("jwks-rotated.json", dict(active, status="retired", retired_at="2026-03-01T00:00:00.000Z"),
     public(signer2, signer2_kid, status="active", created_at="2026-02-01T00:00:00.000Z",
            activated_at="2026-03-01T00:00:00.000Z"))
jwks("jwks-nostatus.json", {k: v for k, v in active.items() if k not in ("status", "created_at", "activated_at")})
jwks("jwks-compromised.json", dict(active, status="compromised", compromised_at="2026-04-05T06:07:08.901Z"))
jwks("jwks-compromised-notime.json", dict(active, status="compromised"))
jwks("jwks-pending.json", dict(active, status="pending"))
# kid_mismatch: the signer's kid on another key
jwks("jwks-swapped.json", dict(public(other, other_kid), kid=signer_kid, status="active"))
jwks("jwks-twice.json", active, dict(active, status="compromised"))

salt = bytes(range(16))
claims = {
    "iss": iss, "jti": cert_id, "iat": now - 60,
    "preset": "soc2", "preset_version": 1, "preset_sha256": "0" * 64, "standards": ["AICPA TSC CC6.1"],
    "strength_bits": 80,
    "credential": {"type": "password", "length": len(credential), "entropy_bits": 97.7,
                   "entropy_method": "whole-candidate-rejection",
                   "commitment": {"alg": "HMAC-SHA-256", "salt": b64(salt),
                                  "value": b64(hmac.new(salt, credential.encode(), hashlib.sha256).digest())},
                   "length_unit": "characters",
                   "charset": "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789#%+-=@",
                   "classes": ["upper", "lower", "digit", "special"],
                   "max_identical_run": None, "max_class_run": None, "prefix": None},
    "entropy_source": {"interface": "PKCS#11", "function": "C_GenerateRandom",
                       "token": {"label": "cstest", "manufacturer": "SoftHSM project", "model": "SoftHSM v2",
                                 "serial": "0", "rng": True, "hardware_version": "2.6",
                                 "firmware_version": "2.6"},
                       "module": {"description": "Implementation of PKCS11", "manufacturer": "SoftHSM",
                                  "version": "2.6"},
                       "validation": {"validated": False}, "software": {"library": "OpenSSL 3", "provider": "default"}},
    "subject": {"identity": "spiffe://credsign.test/ci-deployer", "cert_sha256": "1" * 64},
    "project": "payments", "environment": "production", "system": None,
    "generation_session_id": "s" * 26, "generated_at": iso(certified - 1),
    "certified_at": iso(certified),
}
claims["iat"] = certified
write("credential.txt", credential)
write("wrong-credential.txt", credential[:-1] + "Q")

def sign(key, kid, payload, typ="credsign-cert+jwt", **header):
    h = dict({"alg": "ES256", "typ": typ, "kid": kid}, **header)
    s = jws.JWS(json.dumps(payload, sort_keys=True, separators=(",", ":")))
    s.add_signature(key, None, protected=json.dumps(h, sort_keys=True, separators=(",", ":")))
    return s.serialize(compact=True)

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)

def issue(cn, pub, issuer_cn=None, issuer_key=None, ca=False, start=now - 86400, end=now + 86400, usage=None):
    """An X.509 certificate of pub named cn, signed by issuer_key (self-signed when None)."""
    name = lambda n: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n)])
    b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(issuer_cn or cn)).public_key(pub)
         .serial_number(x509.random_serial_number()).not_valid_before(utc(start)).not_valid_after(utc(end))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    ku = dict(digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
              key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    ku.update(usage or ({"key_cert_sign": True, "crl_sign": True} if ca else {"digital_signature": True}))
    b = b.add_extension(x509.KeyUsage(**ku), critical=True)
    return b.sign(issuer_key, hashes.SHA256())

der = lambda c: base64.b64encode(c.public_bytes(Encoding.DER)).decode()
pem = lambda *cs: "".join(c.public_bytes(Encoding.PEM).decode() for c in cs).rstrip("\n")

def x509_der(key, cn):
    priv = key.get_op_key("sign")
    return der(issue(cn, priv.public_key(), issuer_key=priv))

# a CA hierarchy for the signer: root -> intermediate -> leaf; another root;
# and a self-made look-alike of the root (same name, another key)
root_key, mid_key, other_ca_key, fake_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
root = issue("test root CA", root_key.public_key(), issuer_key=root_key, ca=True, start=now - 864000)
mid = issue("test signing CA", mid_key.public_key(), "test root CA", root_key, ca=True, start=now - 864000)
signer_pub = signer.get_op_key("sign").public_key()
leaf = issue("credsign signing key", signer_pub, "test signing CA", mid_key)
other_ca = issue("another root CA", other_ca_key.public_key(), issuer_key=other_ca_key, ca=True)
fake_root = issue("test root CA", fake_key.public_key(), issuer_key=fake_key, ca=True)
fake_mid = issue("test signing CA", fake_key.public_key(), "test root CA", fake_key, ca=True)
fake_leaf = issue("credsign signing key", signer_pub, "test signing CA", fake_key)
write("root-ca.pem", pem(root))
write("intermediate-ca.pem", pem(mid))
write("other-ca.pem", pem(other_ca))
write("bundle-ca.pem", pem(other_ca, root))
write("not-pem.pem", "not a certificate")
chain = lambda *cs: [der(c) for c in cs]

write("cert.jws", sign(signer, signer_kid, claims))
write("cert-by-compromised.jws", sign(bad, bad_kid, claims))
write("cert-unknown-kid.jws", sign(other, other_kid, claims))
write("cert-wrong-typ.jws", sign(signer, signer_kid, claims, typ="JWT"))
write("cert-no-preset.jws", sign(signer, signer_kid, {k: v for k, v in claims.items() if k != "preset"}))
h, p, s = open("cert.jws").read().strip().split(".")
tampered = dict(claims, preset="hipaa")
write("cert-tampered.jws", h + "." + b64(json.dumps(tampered).encode()) + "." + s)
write("cert-garbage.jws", "not a jws")
write("cert-x5c.jws", sign(signer, signer_kid, claims, x5c=[x509_der(signer, "credsign signing key")]))
write("cert-x5c-other.jws", sign(signer, signer_kid, claims, x5c=[x509_der(other, "another key")]))
write("cert-x5c-garbage.jws", sign(signer, signer_kid, claims, x5c=["bm90IGEgY2VydGlmaWNhdGU="]))
write("cert-x5c-garbage-tail.jws", sign(signer, signer_kid, claims, x5c=chain(leaf) + ["bm90IGEgY2VydGlmaWNhdGU="]))
write("cert-chain.jws", sign(signer, signer_kid, claims, x5c=chain(leaf, mid, root)))
write("cert-chain-noroot.jws", sign(signer, signer_kid, claims, x5c=chain(leaf, mid)))
write("cert-chain-fake.jws", sign(signer, signer_kid, claims, x5c=chain(fake_leaf, fake_mid, fake_root)))
# the leaf expired a few seconds after certified_at, long before now: valid when certified
short = issue("credsign signing key", signer_pub, "test signing CA", mid_key, start=now - 7200, end=certified + 5)
write("cert-chain-since-expired.jws", sign(signer, signer_kid, claims, x5c=chain(short, mid, root)))
# the leaf was not yet valid when certified
late = issue("credsign signing key", signer_pub, "test signing CA", mid_key, start=certified + 5, end=now + 86400)
write("cert-chain-not-yet.jws", sign(signer, signer_kid, claims, x5c=chain(late, mid, root)))
ca_only = issue("credsign signing key", signer_pub, "test signing CA", mid_key, usage={"key_cert_sign": True})
write("cert-chain-usage.jws", sign(signer, signer_kid, claims, x5c=chain(ca_only, mid, root)))
# the certificate's times against the key's period
write("cert-iat-late.jws", sign(signer, signer_kid, dict(claims, iat=now + 3600)))
write("cert-iat-huge.jws", sign(signer, signer_kid, dict(claims, iat=2**63 - 1)))
write("cert-bad-certified-at.jws", sign(signer, signer_kid, dict(claims, certified_at="yesterday")))
write("cert2.jws", sign(signer2, signer2_kid, claims))

def revocations(name, key, kid, revoked, iat=now - 120, next_update=now + 3600, typ="credsign-revocations+jwt",
                issuer=iss):
    write(name, sign(key, kid, {"iss": issuer, "iat": iat, "next_update": next_update, "revoked": revoked}, typ=typ))

elsewhere = {"id": other_id, "revoked_at": "2026-05-02T00:00:00.000Z", "reason": "superseded"}
mine = {"id": cert_id, "revoked_at": "2026-05-03T12:34:56.789Z", "reason": "credential exposed in a CI log"}
revocations("rl-fresh.json", signer, signer_kid, [elsewhere])
revocations("rl-fresh2.json", signer2, signer2_kid, [elsewhere])
revocations("rl-empty.json", signer, signer_kid, [])
revocations("rl-revoked.json", signer, signer_kid, [elsewhere, mine])
revocations("rl-stale.json", signer, signer_kid, [elsewhere], iat=now - 7200, next_update=now - 3600)
revocations("rl-stale-revoked.json", signer, signer_kid, [mine], iat=now - 7200, next_update=now - 3600)
revocations("rl-other-key.json", other, other_kid, [elsewhere])
revocations("rl-compromised-key.json", bad, bad_kid, [elsewhere])
revocations("rl-wrong-typ.json", signer, signer_kid, [elsewhere], typ="JWT")
revocations("rl-other-issuer.json", signer, signer_kid, [elsewhere], issuer="https://elsewhere.test")
revocations("rl-future.json", signer, signer_kid, [elsewhere], iat=now + 86400, next_update=now + 90000)
write("rl-incomplete.json", sign(signer, signer_kid, {"iss": iss, "iat": now, "next_update": now + 3600,
                                                      "revoked": [{"id": cert_id}]}, typ="credsign-revocations+jwt"))
h, p, s = open("rl-revoked.json").read().strip().split(".")
write("rl-tampered.json", h + "." + b64(json.dumps({"iss": iss, "iat": now, "next_update": now + 3600,
                                                    "revoked": []}).encode()) + "." + s)
write("ids", " ".join([cert_id, signer_kid, bad_kid, signer2_kid, iso(certified)]))
write("times", " ".join([iso(certified - grace - 1), iso(certified + grace + 1), iso(now + 3600)]))
PY
read -r cert_id kid bad_kid kid2 certified < ids
read -r retired_before activated_after iat_late < times

# ---- the certificate and the signing key's state -------------------------------------
check "a clean certificate verifies (and says revocation was not checked)" \
	eval 'verified verify cert.jws --jwks jwks.json && grep -q "signing key:   $kid (active)" out.txt &&
	      grep -q "revocation:    not checked" out.txt'
check "with its credential" eval 'verified verify cert.jws --jwks jwks.json --credential-file credential.txt &&
	grep -q "credential matches the commitment" out.txt'
check "a retired key's certificate still verifies" \
	eval 'verified verify cert.jws --jwks jwks-retired.json && grep -q "(retired)" out.txt'
check "a JWKS without key states (older appliance) still verifies" \
	verified verify cert.jws --jwks jwks-nostatus.json
check "its key compromised: key_compromised since compromised_at" refused key_compromised \
	"signing key $kid is compromised since 2026-04-05T06:07:08.901Z" verify cert.jws --jwks jwks-compromised.json
check "compromised without compromised_at: since an unknown time" refused key_compromised \
	"signing key $kid is compromised since an unknown time" verify cert.jws --jwks jwks-compromised-notime.json
check "signed by the JWKS's other, compromised key" refused key_compromised \
	"signing key $bad_kid is compromised since 2026-02-03T04:05:06.789Z" verify cert-by-compromised.jws --jwks jwks.json
check "compromised refuses even with the credential" refused key_compromised "signing key $kid is compromised" \
	verify cert.jws --jwks jwks-compromised.json --credential-file credential.txt
check "a pending key signs nothing valid" refused key_status "the certificate's signing key $kid has the status 'pending'" \
	verify cert.jws --jwks jwks-pending.json
check "a JWKS listing a kid twice" refused jwks_invalid "the JWKS file lists the kid $kid more than once" \
	verify cert.jws --jwks jwks-twice.json

# ---- certified while its key was active (activated_at .. retired_at, 300 s grace) -----
check "certified inside the key's period: verifies, says so" \
	eval 'verified verify cert.jws --jwks jwks-retired.json &&
	      grep -q "key active:    from 2026-01-01T00:00:00.000Z to .*; certified within it (grace 300 s)" out.txt'
check "an active key: from its activation on" \
	eval 'verified verify cert.jws --jwks jwks.json &&
	      grep -q "key active:    from 2026-01-01T00:00:00.000Z (not retired); certified within it" out.txt'
check "certified after retired_at + 300 s: key_not_active" refused key_not_active \
	"certificate certified at $certified, but key $kid was active from 2026-01-01T00:00:00.000Z to $retired_before" \
	verify cert.jws --jwks jwks-retired-before.json
check "certified 240 s after retired_at (a request in flight at the switch): verifies" \
	verified verify cert.jws --jwks jwks-retired-grace.json
check "certified before activated_at - 300 s: key_not_active" refused key_not_active \
	"certificate certified at $certified, but key $kid was active from $activated_after (not retired)" \
	verify cert.jws --jwks jwks-activated-after.json
check "certified 240 s before activated_at (another node's clock): verifies" \
	verified verify cert.jws --jwks jwks-activated-grace.json
check "a key retired long ago (a rotation): its certificates from after refused" refused key_not_active \
	"certificate certified at $certified, but key $kid was active from 2026-01-01T00:00:00.000Z to 2026-03-01T00:00:00.000Z" \
	verify cert.jws --jwks jwks-rotated.json
check "... and its successor's verify" \
	eval 'verify 0 verify cert2.jws --jwks jwks-rotated.json && grep -q "^VERIFIED certificate $cert_id" out.txt &&
	      grep -q "signing key:   $kid2 (active)" out.txt'
check "iat outside the period (certified_at inside): key_not_active" refused key_not_active \
	"certificate issued at ${iat_late%.000Z}Z (its iat; certified_at $certified), but key $kid was active" \
	verify cert-iat-late.jws --jwks jwks-retired.json
check "an iat of 2^63 - 1 (no overflow): key_not_active" refused key_not_active "certificate issued at " \
	verify cert-iat-huge.jws --jwks jwks-retired.json
check "a key without dates (older JWKS): not checked, and the summary says so" \
	eval 'verified verify cert.jws --jwks jwks-nostatus.json &&
	      grep -q "key active:    not checked: the JWKS gives no activation or retirement date" out.txt'
check "a retired key without dates: not checked" verified verify cert.jws --jwks jwks-retired-nodates.json
check "a JWKS date that is no RFC 3339 time: jwks_invalid" refused jwks_invalid \
	"the JWKS's activated_at of key $kid is not an RFC 3339 UTC time" verify cert.jws --jwks jwks-baddate.json
check "a JWKS retiring a key before its activation: jwks_invalid" refused jwks_invalid \
	"the JWKS says key $kid was retired (2025-12-31T00:00:00.000Z) before it was activated" \
	verify cert.jws --jwks jwks-backwards.json
check "certified_at that is no RFC 3339 time: claims_incomplete" refused claims_incomplete \
	"claim 'certified_at' is not an RFC 3339 UTC time" verify cert-bad-certified-at.jws --jwks jwks-nostatus.json

# ---- the other refusals keep their text and gain a code ------------------------------
check "bad_signature" refused bad_signature "bad signature" verify cert-tampered.jws --jwks jwks.json
check "unknown_kid" refused unknown_kid "no usable key in the JWKS has the certificate's kid" \
	verify cert-unknown-kid.jws --jwks jwks.json
check "kid_mismatch" refused kid_mismatch "the key's RFC 7638 thumbprint does not match its kid" \
	verify cert.jws --jwks jwks-swapped.json
check "malformed" refused malformed "not a JWS compact serialization" verify cert-garbage.jws --jwks jwks.json
check "wrong_typ" refused wrong_typ "header typ is not credsign-cert+jwt" verify cert-wrong-typ.jws --jwks jwks.json
check "claims_incomplete" refused claims_incomplete "claim 'preset' missing" verify cert-no-preset.jws --jwks jwks.json
check "credential_mismatch" refused credential_mismatch "the credential does not match the certificate's commitment" \
	verify cert.jws --jwks jwks.json --credential-file wrong-credential.txt
check "jwks_invalid" refused jwks_invalid "the JWKS file is not a JSON Web Key Set" \
	verify cert.jws --jwks credential.txt

# ---- x5c: informative, but its leaf must hold the JWKS key ----------------------------
check "x5c whose leaf holds the key: verifies by kid, names the leaf, says the chain is not validated" \
	eval 'verified verify cert-x5c.jws --jwks jwks.json &&
	      grep -qxF "  x5c:           leaf CN=credsign signing key holds the signing key (chain not validated against any trust anchor)" out.txt'
check "x5c with a tail that is no certificate: x5c_mismatch" refused x5c_mismatch "the header's x5c is not a list" \
	verify cert-x5c-garbage-tail.jws --jwks jwks.json
check "x5c of another key: x5c_mismatch" refused x5c_mismatch \
	"the x5c leaf certificate's public key is not the JWKS key of the kid" verify cert-x5c-other.jws --jwks jwks.json
check "x5c that is no certificate: x5c_mismatch" refused x5c_mismatch "the header's x5c is not a list" \
	verify cert-x5c-garbage.jws --jwks jwks.json
check "x5c does not override a compromised key" refused key_compromised "signing key $kid is compromised" \
	verify cert-x5c.jws --jwks jwks-compromised.json

# ---- --x5c-ca FILE: the chain validated to that anchor, at certified_at ---------------
check "--x5c-ca the issuing root: validated, the anchor named" \
	eval 'verified verify cert-chain.jws --jwks jwks.json --x5c-ca root-ca.pem &&
	      grep -qF "  x5c:           leaf CN=credsign signing key holds the signing key; chain validated to the trust anchor CN=test root CA (root-ca.pem) as of ${certified%.000Z}Z" out.txt'
check "--x5c-ca a bundle holding the root among others" verified verify cert-chain.jws --jwks jwks.json --x5c-ca bundle-ca.pem
check "--x5c-ca a chain without its root: the anchor completes it" \
	verified verify cert-chain-noroot.jws --jwks jwks.json --x5c-ca root-ca.pem
check "--x5c-ca a pinned intermediate" \
	eval 'verified verify cert-chain.jws --jwks jwks.json --x5c-ca intermediate-ca.pem &&
	      grep -q "chain validated to the trust anchor CN=test signing CA" out.txt'
check "--x5c-ca another root: x5c_untrusted" refused x5c_untrusted \
	"the x5c chain does not validate to a trust anchor of other-ca.pem at ${certified%.000Z}Z (certified_at)" \
	verify cert-chain.jws --jwks jwks.json --x5c-ca other-ca.pem
check "a self-made chain naming the real root (L10): x5c_untrusted" refused x5c_untrusted \
	"the x5c chain does not validate to a trust anchor of root-ca.pem" \
	verify cert-chain-fake.jws --jwks jwks.json --x5c-ca root-ca.pem
check "a self-signed leaf: x5c_untrusted" refused x5c_untrusted "the x5c chain does not validate" \
	verify cert-x5c.jws --jwks jwks.json --x5c-ca root-ca.pem
check "validated at certified_at: a leaf expired since verifies" \
	verified verify cert-chain-since-expired.jws --jwks jwks.json --x5c-ca root-ca.pem
check "a leaf not yet valid when certified: x5c_untrusted" eval 'refused x5c_untrusted \
	"the x5c chain does not validate to a trust anchor of root-ca.pem at ${certified%.000Z}Z (certified_at)" \
	verify cert-chain-not-yet.jws --jwks jwks.json --x5c-ca root-ca.pem &&
	grep -qF "certificate is not yet valid, at CN=credsign signing key" err.txt'
check "a leaf whose keyUsage excludes digitalSignature: x5c_untrusted" refused x5c_untrusted \
	"the x5c leaf certificate's keyUsage does not allow digitalSignature" \
	verify cert-chain-usage.jws --jwks jwks.json --x5c-ca root-ca.pem
check "--x5c-ca and a certificate without x5c: x5c_untrusted" refused x5c_untrusted \
	"the certificate's header carries no x5c chain to validate to root-ca.pem" \
	verify cert.jws --jwks jwks.json --x5c-ca root-ca.pem
check "--x5c-ca does not override the leaf's key" refused x5c_mismatch \
	"the x5c leaf certificate's public key is not the JWKS key of the kid" \
	verify cert-x5c-other.jws --jwks jwks.json --x5c-ca root-ca.pem
check "--x5c-ca a missing file: exit 1, named" eval 'verify 1 verify cert-chain.jws --jwks jwks.json --x5c-ca missing.pem &&
	grep -q "credsign: --x5c-ca missing.pem: No such file" err.txt'
check "--x5c-ca a file without certificates: exit 1, named" eval 'verify 1 verify cert-chain.jws --jwks jwks.json \
	--x5c-ca not-pem.pem && grep -q "credsign: --x5c-ca not-pem.pem: no PEM certificate in it" err.txt'

# ---- --revocations FILE -------------------------------------------------------------
check "a fresh list without it: verifies, not revoked" \
	eval 'verified verify cert.jws --jwks jwks.json --revocations rl-fresh.json &&
	      grep -q "revocation:    not revoked (list of .* by key $kid, 1 revoked, next update " out.txt'
check "an empty list" verified verify cert.jws --jwks jwks.json --revocations rl-empty.json
check "listed: revoked, with time and reason" refused revoked \
	"certificate $cert_id revoked at 2026-05-03T12:34:56.789Z: credential exposed in a CI log" \
	verify cert.jws --jwks jwks.json --revocations rl-revoked.json
check "listed, with the credential: still revoked" refused revoked "certificate $cert_id revoked at" \
	verify cert.jws --jwks jwks.json --revocations rl-revoked.json --credential-file credential.txt
check "a stale list: revocations_stale" refused revocations_stale "the revocation list issued" \
	verify cert.jws --jwks jwks.json --revocations rl-stale.json
check "a stale list that lists it: revoked (revocation is final)" refused revoked "certificate $cert_id revoked at" \
	verify cert.jws --jwks jwks.json --revocations rl-stale-revoked.json
check "signed by a key not in the JWKS: revocations_invalid" refused revocations_invalid \
	"no usable key in the JWKS has the revocation list's kid" \
	verify cert.jws --jwks jwks.json --revocations rl-other-key.json
check "signed by a compromised key: revocations_invalid" refused revocations_invalid \
	"the revocation list's signing key $bad_kid is compromised since 2026-02-03T04:05:06.789Z" \
	verify cert.jws --jwks jwks.json --revocations rl-compromised-key.json
check "a tampered list: revocations_invalid" refused revocations_invalid \
	"the revocation list's signature does not verify" verify cert.jws --jwks jwks.json --revocations rl-tampered.json
check "a list of another type: revocations_invalid" refused revocations_invalid \
	"the revocation list's header typ is not credsign-revocations+jwt" \
	verify cert.jws --jwks jwks.json --revocations rl-wrong-typ.json
check "a certificate is not a revocation list" refused revocations_invalid \
	"the revocation list's header typ is not credsign-revocations+jwt" \
	verify cert.jws --jwks jwks.json --revocations cert.jws
check "another issuer's list: revocations_invalid" refused revocations_invalid \
	"the revocation list's issuer https://elsewhere.test is not the certificate's (https://credsign.test:8443)" verify cert.jws --jwks jwks.json --revocations rl-other-issuer.json
check "a list issued in the future: revocations_invalid" refused revocations_invalid \
	"the revocation list's times are impossible" verify cert.jws --jwks jwks.json --revocations rl-future.json
check "entries without revoked_at and reason: revocations_invalid" refused revocations_invalid \
	"the revocation list's claims are incomplete" verify cert.jws --jwks jwks.json --revocations rl-incomplete.json
check "not a JWS: revocations_invalid" refused revocations_invalid "the revocation list is not a JWS" \
	verify cert.jws --jwks jwks.json --revocations credential.txt
check "a retired key's list still verifies" verified verify cert.jws --jwks jwks-retired.json --revocations rl-fresh.json
check "a list signed by a key retired long ago (its holder's empty list): revocations_invalid" refused \
	revocations_invalid "the revocation list was issued at " \
	verify cert2.jws --jwks jwks-rotated.json --revocations rl-fresh.json
check "... with its period named" eval 'refused revocations_invalid "the revocation list was issued at " \
	verify cert2.jws --jwks jwks-rotated.json --revocations rl-fresh.json &&
	grep -qF "but its signing key $kid was active from 2026-01-01T00:00:00.000Z to 2026-03-01T00:00:00.000Z" err.txt'
check "the active key's list: verifies" verified verify cert2.jws --jwks jwks-rotated.json --revocations rl-fresh2.json
check "a list by a key without dates: says its period was not checked" \
	eval 'verified verify cert.jws --jwks jwks-nostatus.json --revocations rl-fresh.json &&
	      grep -q "revocation:    not revoked (.*; the key.s active period not checked: no dates in the JWKS)" out.txt'
check "the key compromised: the certificate refused before the list" refused key_compromised \
	"signing key $kid is compromised" verify cert.jws --jwks jwks-compromised.json --revocations rl-fresh.json
check "a missing list file: exit 1" verify 1 verify cert.jws --jwks jwks.json --revocations missing.json

# ---- usage ---------------------------------------------------------------------------
check "--online and --revocations together: usage" eval 'verify 2 --url https://127.0.0.1:1 --cacert x --cert x \
	--key x verify cert.jws --online --revocations rl-fresh.json && grep -q "not both" err.txt'
check "--online without the client certificate: usage" eval 'verify 2 verify cert.jws --online &&
	grep -q "verify --online needs --cacert, --cert and --key" err.txt'
check "without --jwks or --online: usage" verify 2 verify cert.jws

# ---- --online against an HTTPS server with the development PKI ------------------------
mkdir -p www/.well-known
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$py" - "$port" "$pki" www > server.log 2>&1 <<'PY' &
import http.server, os, ssl, sys
port, pki, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/"))
        if self.path.endswith("/credsign-revocations") and os.path.exists(path + ".503"):
            body, status, ctype = b'{"error":{"code":"revocations_unavailable","message":"no list"}}', 503, "application/json"
        elif os.path.isfile(path):
            body, status = open(path, "rb").read(), 200
            ctype = "application/jwt" if path.endswith("revocations") else "application/json"
        else:
            body, status, ctype = b'{"error":{"code":"not_found","message":"no such path"}}', 404, "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(self.requestline, self.connection.getpeercert()["subjectAltName"], flush=True)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(os.path.join(pki, "server.pem"), os.path.join(pki, "server.key"))
ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
ctx.verify_mode = ssl.CERT_REQUIRED
httpd = http.server.HTTPServer(("127.0.0.1", port), Handler)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print("listening", flush=True)
httpd.serve_forever()
PY
server=$!
for _ in $(seq 100); do grep -q listening server.log && break; sleep 0.05; done
conn=(--url "https://127.0.0.1:$port" --cacert "$pki/ca.pem" --cert "$pki/clients/ci-deployer.pem"
	--key "$pki/clients/ci-deployer.key")
serve() { cp "$1" www/.well-known/jwks.json && cp "$2" www/.well-known/credsign-revocations; }

online_clean() {
	serve jwks.json rl-fresh.json && verified "${conn[@]}" verify cert.jws --online &&
		grep -q "revocation:    not revoked" out.txt &&
		grep -q "GET /.well-known/jwks.json .*ci-deployer" server.log &&
		grep -q "GET /.well-known/credsign-revocations .*ci-deployer" server.log
}
check "--online: the served JWKS and list over mutual TLS, verifies" online_clean
check "--online: listed: revoked" eval 'serve jwks.json rl-revoked.json &&
	refused revoked "certificate $cert_id revoked at 2026-05-03T12:34:56.789Z: credential exposed in a CI log" \
	"${conn[@]}" verify cert.jws --online'
check "--online: the served JWKS says compromised: key_compromised" eval 'serve jwks-compromised.json rl-fresh.json &&
	refused key_compromised "signing key $kid is compromised since 2026-04-05T06:07:08.901Z" \
	"${conn[@]}" verify cert.jws --online'
check "--online --jwks FILE: the operator's JWKS, not the served one" eval 'serve jwks-compromised.json rl-fresh.json &&
	verified "${conn[@]}" verify cert.jws --online --jwks jwks.json'
check "--online --jwks FILE: the list must verify with it" eval 'serve jwks.json rl-other-key.json &&
	refused revocations_invalid "no usable key in the JWKS has the revocation list'"'"'s kid" \
	"${conn[@]}" verify cert.jws --online --jwks jwks.json'
check "--online: a stale served list" eval 'serve jwks.json rl-stale.json &&
	refused revocations_stale "the revocation list issued" "${conn[@]}" verify cert.jws --online'
check "--online: the server has no list (503): revocations_unavailable" eval 'serve jwks.json rl-fresh.json &&
	touch www/.well-known/credsign-revocations.503 &&
	refused revocations_unavailable "cannot fetch the revocation list from https://127.0.0.1:$port" \
	"${conn[@]}" verify cert.jws --online && grep -q "HTTP 503 revocations_unavailable" err.txt'
rm -f www/.well-known/credsign-revocations.503
check "--online: no server: exit 1" eval 'verify 1 --url https://127.0.0.1:1 --cacert "$pki/ca.pem" \
	--cert "$pki/clients/ci-deployer.pem" --key "$pki/clients/ci-deployer.key" verify cert.jws --online &&
	grep -q "NOT VERIFIED (jwks_unavailable)" err.txt'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
