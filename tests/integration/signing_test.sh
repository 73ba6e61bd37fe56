#!/usr/bin/env bash
# Delegated signing, the must-show of issue 15, over real mTLS:
#  - each format signed by the appliance and verified by an implementation
#    that is not ours: python3-jwcrypto for the JWS, a DSSE v1 verifier
#    written here from the DSSE specification (PAE, then ECDSA P-256 over
#    SHA-256 with python3-cryptography), `openssl dgst -sha256 -verify` for
#    a digest signed by `credsign sign` (the file itself never sent);
#  - the refusals: unknown profile, format not allowed, payload type not
#    allowed, payload over the limit, reserved claims in a JWS payload, an
#    identity without the signer grant: each a clear 4xx and an audit entry
#    with its code; the certificate-signing key configured as a profile key
#    is refused at start (and by --check-config) naming the setting, and the
#    refused start is audited in the store;
#  - a signature is found again by id (GET /api/signatures/{id}) and matches
#    its audit entry (seq, id, kid, SHA-256 of the signed bytes); an edit of
#    that entry is caught by credsign-admin audit verify;
#  - the profile's JWKS holds its key, the certificate JWKS does not (a
#    profile key never verifies a certificate).
#
#   signing_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token signing || exit 1
PY=/usr/bin/python3 # Debian's python3 with python3-jwcrypto and python3-cryptography

SIGNING_GROUP='signing = { batch_max = 10; profiles = (
    { name = "release"; key = "pkcs11:token=cstest;object=it-release";
      formats = [ "jws", "dsse", "digest" ]; typ = "release+jwt";
      payload_types = [ "application/vnd.in-toto+json" ]; max_payload_bytes = 4096; },
    { name = "tokens"; key = "pkcs11:token=cstest;object=it-tokens";
      formats = [ "jws" ]; typ = "JWT"; max_payload_bytes = 1024; lifetime_seconds = 300;
      aud = [ "https://api.example.test" ]; }
  ); };'
SIGN_GRANTS="$DEFAULT_GRANTS"',
    { identity = "spiffe://credsign.test/ci-deployer"; role = "signer"; profiles = [ "release", "tokens" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ "*" ]; }'

# the profile keys, made before the daemon's first start (lib.sh)
profile_keys signing "$SIGNING_GROUP" it release tokens || exit 1

EXTRA_CONF="$SIGNING_GROUP audit = { checkpoint_seconds = 1; };" GRANTS="$SIGN_GRANTS" it_setup signing || exit 1
wait_for_log 'msg="credsignd .* starting' || true

# sign WHO BODY: POST /api/sign; "STATUS BODY" (call, lib.sh)
sign() { call "$1" POST /api/sign "$2"; }
jf() { json_field "$(cat "$1")" "$2"; } # jf FILE FIELD
b64() { base64 -w0; }

curl -s "$url/.well-known/jwks.json?profile=release" $(client ci-deployer) > "$work/jwks-release.json"
curl -s "$url/.well-known/jwks.json?profile=tokens" $(client ci-deployer) > "$work/jwks-tokens.json"
curl -s "$url/.well-known/jwks.json" $(client ci-deployer) > "$work/jwks-certs.json"

jwks_apart() {
	$PY - "$work/jwks-release.json" "$work/jwks-tokens.json" "$work/jwks-certs.json" <<'PY'
import json, sys
rel, tok, cer = (json.load(open(p))["keys"] for p in sys.argv[1:])
kids = lambda ks: {k["kid"] for k in ks}
assert len(rel) == 1 and rel[0]["status"] == "active", rel
assert len(tok) == 1 and tok[0]["status"] == "active", tok
assert not (kids(rel) & kids(cer)) and not (kids(tok) & kids(cer)) and not (kids(rel) & kids(tok)), (rel, tok, cer)
PY
}
check "each profile's JWKS holds its own active key; the certificate JWKS holds neither" jwks_apart

# ---- JWS, verified by python3-jwcrypto ----------------------------------------------
jws_jwcrypto() {
	local got
	got=$(sign ci-deployer '{"profile":"release","format":"jws","payload":{"artifact":"app-1.4.2.tar.gz","sha256":"'"$(printf x | sha256sum | cut -c1-64)"'","pipeline":42}}')
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	echo "${got#200 }" > "$work/jws-answer.json"
	$PY - "$work/jws-answer.json" "$work/jwks-release.json" "$url" <<'PY'
import json, sys, time
from jwcrypto import jwk, jws
ans = json.load(open(sys.argv[1]))
keys = jwk.JWKSet.from_json(open(sys.argv[2]).read())
tok = jws.JWS()
tok.deserialize(ans["jws"])
hdr = tok.jose_header
key = keys.get_key(hdr["kid"])
assert key is not None, "kid not in the profile's JWKS"
assert key.thumbprint() == hdr["kid"] == ans["kid"], (key.thumbprint(), hdr["kid"], ans["kid"])
tok.verify(key, alg="ES256")
assert hdr == {"alg": "ES256", "typ": "release+jwt", "kid": ans["kid"]}, hdr
c = json.loads(tok.payload)
assert c["artifact"] == "app-1.4.2.tar.gz" and c["pipeline"] == 42, c
assert c["iss"] == sys.argv[3] and c["sub"] == "spiffe://credsign.test/ci-deployer", c
assert abs(c["iat"] - time.time()) < 120 and "exp" not in c and c["jti"], c
assert isinstance(ans["seq"], int) and ans["signature_id"] and ans["format"] == "jws", ans
PY
}
check "jws: python3-jwcrypto verifies it against the profile's JWKS (typ, kid, iss, sub, iat, jti)" jws_jwcrypto

jws_lifetime() {
	local got
	got=$(sign ci-deployer '{"profile":"tokens","format":"jws","payload":{"scope":"deploy"}}')
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	echo "${got#200 }" > "$work/tok-answer.json"
	$PY - "$work/tok-answer.json" "$work/jwks-tokens.json" "$work/jwks-release.json" <<'PY'
import json, sys
from jwcrypto import jwk, jws
ans = json.load(open(sys.argv[1]))
tok = jws.JWS(); tok.deserialize(ans["jws"])
tok.verify(jwk.JWKSet.from_json(open(sys.argv[2]).read()).get_key(ans["kid"]), alg="ES256")
c = json.loads(tok.payload)
assert c["exp"] - c["iat"] == 300 and c["aud"] == "https://api.example.test", c
# the release profile's key does not verify it
other = jwk.JWKSet.from_json(open(sys.argv[3]).read())["keys"]
for k in other:
    try:
        t2 = jws.JWS(); t2.deserialize(ans["jws"]); t2.verify(k, alg="ES256")
        raise SystemExit("verified with another profile's key")
    except jws.InvalidJWSSignature:
        pass
PY
}
check "jws: a profile's lifetime and aud become exp and aud; another profile's key does not verify it" jws_lifetime

# ---- DSSE, verified from the specification ------------------------------------------
cat > "$work/provenance.json" <<'JSON'
{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app-1.4.2.tar.gz","digest":{"sha256":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://example.test/ci@v1"}}}
JSON
dsse_verifier() { # dsse_verifier ENVELOPE JWKS: a DSSE v1 verifier written from the specification
	$PY - "$1" "$2" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
env = json.load(open(sys.argv[1]))
keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
def b64u(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def pae(t, body):  # DSSE v1: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
    t = t.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)
body = base64.b64decode(env["payload"], validate=True)
assert env["signatures"], "no signature"
ok = 0
for s in env["signatures"]:
    k = keys.get(s["keyid"])
    if k is None:
        continue
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b64u(k["x"]), "big"), int.from_bytes(b64u(k["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    pub.verify(base64.b64decode(s["sig"], validate=True), pae(env["payloadType"], body), ec.ECDSA(hashes.SHA256()))
    ok += 1
assert ok >= 1, "no signature by a key of the JWKS"
print(env["payloadType"])
PY
}
dsse_spec() {
	local got
	got=$(sign ci-deployer '{"profile":"release","format":"dsse","payload_type":"application/vnd.in-toto+json","payload":"'"$(b64 < "$work/provenance.json")"'"}')
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	echo "${got#200 }" > "$work/dsse-answer.json"
	$PY -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["envelope"], sys.stdout)' "$work/dsse-answer.json" \
		> "$work/envelope.json" || return 1
	[ "$(dsse_verifier "$work/envelope.json" "$work/jwks-release.json")" = application/vnd.in-toto+json ] || return 1
	# the payload carried is the provenance, byte for byte
	$PY -c 'import base64,json,sys; sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))' \
		"$work/envelope.json" | cmp -s - "$work/provenance.json" || return 1
	# one byte of the payload changed: the same verifier refuses it
	$PY - "$work/envelope.json" "$work/envelope-bad.json" <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
b = bytearray(base64.b64decode(e["payload"])); b[10] ^= 1
e["payload"] = base64.b64encode(bytes(b)).decode()
json.dump(e, open(sys.argv[2], "w"))
PY
	! dsse_verifier "$work/envelope-bad.json" "$work/jwks-release.json" > /dev/null 2>&1
}
check "dsse: an in-toto statement's envelope verifies with a verifier written from the DSSE spec; a changed byte does not" dsse_spec

# ---- digest: credsign sign, then openssl dgst -verify ------------------------------
credsign_client() { # the credsign client as ci-deployer
	"$BUILD/bin/credsign" --url "$url" --cacert "$pki/ca.pem" --cert "$clients/ci-deployer.pem" \
		--key "$clients/ci-deployer.key" "$@"
}
digest_openssl() {
	head -c 300000 /dev/urandom > "$work/artifact.tar.gz"
	credsign_client sign --profile release --format digest --out "$work/artifact.sig" "$work/artifact.tar.gz" \
		> "$work/digest-answer.json" || return 1
	# the public key in PEM, from the profile's JWKS
	$PY - "$work/jwks-release.json" "$(jf "$work/digest-answer.json" kid)" > "$work/release-pub.pem" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
k = [k for k in json.load(open(sys.argv[1]))["keys"] if k["kid"] == sys.argv[2]][0]
i = lambda s: int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")
pub = ec.EllipticCurvePublicNumbers(i(k["x"]), i(k["y"]), ec.SECP256R1()).public_key()
sys.stdout.write(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
PY
	openssl dgst -sha256 -verify "$work/release-pub.pem" -signature "$work/artifact.sig" "$work/artifact.tar.gz" |
		grep -q '^Verified OK' || return 1
	# the record holds the file's SHA-256, which is all the appliance saw
	[ "$(json_field "$(call auditor GET "/api/signatures/$(jf "$work/digest-answer.json" signature_id)" |
		cut -d' ' -f2-)" signed_sha256)" = "$(sha256sum "$work/artifact.tar.gz" | cut -c1-64)" ] || return 1
	printf 'x' >> "$work/artifact.tar.gz"
	! openssl dgst -sha256 -verify "$work/release-pub.pem" -signature "$work/artifact.sig" "$work/artifact.tar.gz" \
		> /dev/null 2>&1
}
check "digest: credsign sign's DER signature passes openssl dgst -sha256 -verify; a changed file does not" digest_openssl

our_verifier() {
	credsign_client jwks --profile release > "$work/jwks-cli.json" &&
		$PY -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); strip=lambda ks: [{k: v for k, v in key.items() if k != "formats_signed"} for key in ks]; assert strip(a["keys"])==strip(b["keys"])' \
			"$work/jwks-cli.json" "$work/jwks-release.json" || return 1
	jf "$work/jws-answer.json" jws > "$work/release.jws"
	"$BUILD/bin/credsign" verify-signature --jwks "$work/jwks-release.json" --jws "$work/release.jws" > /dev/null &&
		"$BUILD/bin/credsign" verify-signature --jwks "$work/jwks-release.json" --dsse "$work/envelope.json" > /dev/null ||
		return 1
	"$BUILD/bin/credsign" verify-signature --jwks "$work/jwks-release.json" --signature "$work/artifact.sig" \
		"$work/artifact.tar.gz" > /dev/null 2>&1
	[ $? -eq 1 ] || return 1 # the artifact changed above: refused
	"$BUILD/bin/credsign" verify-signature --jwks "$work/jwks-release.json" --dsse "$work/envelope-bad.json" > /dev/null 2>&1
	[ $? -eq 1 ] || return 1
	# the certificate JWKS does not verify a profile's signature
	"$BUILD/bin/credsign" verify-signature --jwks "$work/jwks-certs.json" --jws "$work/release.jws" > /dev/null 2>&1
	[ $? -eq 1 ]
}
check "credsign verify-signature agrees: jws, dsse valid; changed artifact, changed envelope, wrong JWKS refused" our_verifier

# ---- refusals: a clear 4xx and an audit entry each ----------------------------------
audit_has() { # audit_has CODE: an entry action sign, outcome refused, error_code CODE
	[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'sign' AND outcome = 'refused' AND error_code = '$1'")" -ge 1 ]
}
refused() { # refused WHO BODY STATUS CODE
	expect_error "$1" POST /api/sign "$2" "$3" "$4" && audit_has "$4"
}
big=$(head -c 3000 /dev/zero | tr '\0' a)
check "unknown profile: 400 unknown_profile, audited" \
	refused ci-deployer '{"profile":"nightly","format":"jws","payload":{"a":1}}' 400 unknown_profile
check "format not allowed: 400 format_not_allowed, audited" \
	refused ci-deployer '{"profile":"tokens","format":"dsse","payload_type":"application/vnd.in-toto+json","payload":"e30="}' 400 format_not_allowed
check "payload type not allowed: 400 payload_type_not_allowed, audited" \
	refused ci-deployer '{"profile":"release","format":"dsse","payload_type":"text/plain","payload":"aGk="}' 400 payload_type_not_allowed
check "payload over the profile's limit: 413 payload_too_large, audited" \
	refused ci-deployer '{"profile":"tokens","format":"jws","payload":{"blob":"'"$big"'"}}' 413 payload_too_large
for claim in iss sub iat exp jti; do
	check "reserved claim '$claim' in a JWS payload: 400 reserved_claim, audited" \
		refused ci-deployer '{"profile":"release","format":"jws","payload":{"'$claim'":"x","a":1}}' 400 reserved_claim
done
no_grant() {
	expect_error web-deployer POST /api/sign '{"profile":"release","format":"jws","payload":{"a":1}}' 403 forbidden &&
		[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'sign' AND outcome = 'refused'
			AND error_code = 'forbidden' AND actor = 'spiffe://credsign.test/web-deployer'")" -ge 1 ]
}
check "an identity without a signer grant: 403 forbidden, audited under its identity" no_grant

batch_mixed() {
	local got
	got=$(sign ci-deployer '{"items":[{"profile":"release","format":"jws","payload":{"n":1}},
		{"profile":"release","format":"jws","payload":{"iat":1}},
		{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"'"$(printf a | sha256sum | cut -c1-64)"'"}}]}')
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	$PY - "${got#200 }" <<'PY'
import json, sys
items = json.loads(sys.argv[1])["items"]
assert len(items) == 3, items
assert items[0]["signature_id"] and items[0]["jws"], items[0]
assert items[1]["status"] == 400 and items[1]["error"]["code"] == "reserved_claim", items[1]
assert items[2]["signature_id"] and items[2]["signature"] and items[2]["seq"] > items[0]["seq"], items[2]
PY
}
check "batch: each item answered or refused on its own" batch_mixed
check "batch over signing.batch_max: 413 batch_too_large" expect_error ci-deployer POST /api/sign \
	"{\"items\":[$(for i in $(seq 11); do printf '{"profile":"release","format":"jws","payload":{"n":%d}},' "$i"; done | sed 's/,$//')]}" \
	413 batch_too_large

metrics_count() {
	call operator GET /metrics | grep -q 'credsign_requests_total{route="sign",code="200"} [1-9]' &&
		call operator GET /metrics | grep -q 'credsign_requests_total{route="sign",code="400"} [1-9]'
}
check "/metrics counts /api/sign answers under route=\"sign\"" metrics_count

# ---- the record, the audit entry, tampering ---------------------------------------
record_matches() {
	local id got
	id=$(jf "$work/dsse-answer.json" signature_id)
	got=$(call auditor GET "/api/signatures/$id")
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	echo "${got#200 }" > "$work/record.json"
	sqlite3 -json "$db" "SELECT seq, ts, actor, action, object, outcome FROM audit_log WHERE seq = $(jf "$work/record.json" audit_seq)" > "$work/entry.json"
	$PY - "$work/record.json" "$work/entry.json" "$work/dsse-answer.json" "$work/envelope.json" <<'PY'
import base64, hashlib, json, sys
rec = json.load(open(sys.argv[1])); ent = json.load(open(sys.argv[2]))[0]; ans = json.load(open(sys.argv[3]))
env = json.load(open(sys.argv[4]))
t = env["payloadType"].encode(); body = base64.b64decode(env["payload"])
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)
assert rec["signed_sha256"] == hashlib.sha256(pae).hexdigest(), "record's SHA-256 is not of PAE"
assert rec["audit_seq"] == ans["seq"] and rec["kid"] == ans["kid"] and rec["signature_id"] == ans["signature_id"]
assert rec["requester"] == "spiffe://credsign.test/ci-deployer" and rec["profile"] == "release" and rec["format"] == "dsse"
assert ent["action"] == "sign" and ent["outcome"] == "success" and ent["actor"] == rec["requester"], ent
assert ent["ts"] == rec["created_at"], (ent["ts"], rec["created_at"])
obj = ent["object"].split(" ")
assert obj[0] == rec["signature_id"] and "kid=" + rec["kid"] in obj and "sha256=" + rec["signed_sha256"] in obj, obj
assert "payload" not in rec, "the payload is stored although the profile does not say so"
PY
}
check "GET /api/signatures/{id}: the record matches the answer and its audit entry (seq, ts, kid, SHA-256 of PAE)" record_matches
check "the record is refused to an identity without signer or auditor rights on the profile" \
	expect_error web-deployer GET "/api/signatures/$(jf "$work/dsse-answer.json" signature_id)" "" 403 forbidden

tamper_caught() {
	local seq t=$work/tampered.db out
	seq=$(jf "$work/record.json" audit_seq)
	curl -s "$url/.well-known/jwks.json" $(client auditor) > "$work/jwks-audit.json"
	sleep 1.5 # a checkpoint covers the entry
	sqlite3 "$db" ".backup '$t'" || return 1 # the daemon's WAL included
	sqlite3 "$t" "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET object = replace(object, 'sha256=', 'sha256=0') WHERE seq = $seq" ||
		return 1
	sed "s|path = \"$db\"|path = \"$t\"|" "$conf" > "$work/tampered.conf"
	out=$("$BUILD/bin/credsign-admin" --config "$work/tampered.conf" audit verify --jwks "$work/jwks-audit.json" 2> /dev/null)
	echo "  $out"
	[[ "$out" == "audit log NOT intact at seq $seq: "* ]]
}
check "an edit of the signature's audit entry is caught by credsign-admin audit verify" tamper_caught

# ---- the certificate key as a profile key: refused at start ----------------------
cert_key_refused() { # the tokens profile given the certificate key: URI text as pkcs11.signing_key's,
	# and another URI naming the same token object (found by its kid at start)
	local bad=$work/certkey.conf out uri
	for uri in 'object=it-es256-signing"' 'object=it-es256-signing;type=private"'; do
		sed -e "s|object=it-tokens\"|$uri|" -e "s|127.0.0.1:$port|127.0.0.1:$(free_port)|g" \
			-e "s|path = \"$db\"|path = \"$work/data/certkey.db\"|" "$conf" > "$bad"
		grep -q "$uri" "$bad" || return 1
		out=$("$BUILD/bin/credsignd" --check-config "$bad" 2>&1) && { echo "  accepted: $uri"; return 1; }
		echo "$out" | grep -m1 'signing.profiles' | sed 's/^/  /'
		[[ "$out" == *"signing.profiles"* ]] || { echo "  $out"; return 1; }
		# the start is refused and the refusal recorded in the store it would have run on
		rm -f "$work/data/certkey.db"*
		sqlite3 "$db" ".backup '$work/data/certkey.db'" || return 1
		[ -z "$RUN_AS" ] || chown "$SERVICE_USER:" "$work/data/certkey.db" # the network process's
		out=$(timeout 20 "$BUILD/bin/credsignd" --config "$bad" 2>&1) && return 1
		[[ "$out" == *"signing.profiles"* ]] || { echo "  $out"; return 1; }
		# (the same URI text is refused when the file loads, before any token or store)
		[[ "$uri" != *type=private* ]] ||
			[ "$(sqlite3 "$work/data/certkey.db" "SELECT count(*) FROM audit_log WHERE action = 'daemon.start'
				AND outcome = 'failure' AND error_code = 'profile_key_refused'
				AND object LIKE 'signing.profiles.[1].key kid=%'")" = 1 ] || return 1
	done
}
check "the certificate-signing key configured as a profile key: refused by --check-config and at start" cert_key_refused

finish
