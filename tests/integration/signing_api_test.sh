#!/usr/bin/env bash
# POST /api/sign, GET /api/signatures/{id} and the per-profile JWKS over
# real mTLS (curl), against a daemon with three signing profiles:
#  - each refusal answers its status and code and is audited (action sign,
#    outcome refused, error_code the code, object "profile=P format=F"):
#    unknown_profile, format_not_allowed, payload_type_not_allowed,
#    payload_too_large, reserved_claim, forbidden (no signer grant at all,
#    and a signer grant for other profiles), rate_limited (each item pays
#    one token), decoding refusals (unknown_field, invalid_field);
#  - the whole request's refusals: batch_too_large, body_too_large (the
#    signing limit for /api/sign only: the other routes keep
#    server.max_body_bytes);
#  - a batch of good and bad items: each answered or refused in order, every
#    item one entry, all written together (consecutive seqs), each signed
#    item's record carrying its entry's seq and time;
#  - GET /api/signatures/{id}: the signer and an auditor of the profile read
#    it (payload only where the profile stores it); others are refused
#    (403, audited), an unknown id is 404;
#  - the JWKS per profile lists the profile's key and not the certificate
#    key, and the certificate JWKS the reverse; unknown profiles are 404;
#  - the certificate key configured as a profile key is refused by
#    --check-config.
#
#   signing_api_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token signing-api || exit 1

SIGNING_GROUP='signing = { max_request_bytes = 200000; batch_max = 5; profiles = (
    { name = "release"; key = "pkcs11:token=cstest;object=it-sapi-release";
      formats = [ "jws", "dsse", "digest" ]; typ = "release+jwt";
      payload_types = [ "application/vnd.in-toto+json" ]; max_payload_bytes = 1024; store_payload = true; },
    { name = "tokens"; key = "pkcs11:token=cstest;object=it-sapi-tokens";
      formats = [ "jws" ]; typ = "JWT"; max_payload_bytes = 1024; },
    { name = "locked"; key = "pkcs11:token=cstest;object=it-sapi-locked"; formats = [ "digest" ]; }
  ); };'
# ci-deployer signs with release and tokens; web-deployer with tokens, one
# token every 1000 s, a bucket of 2; the auditor reads release's records
GRANTS="$DEFAULT_GRANTS"',
    { identity = "spiffe://credsign.test/ci-deployer"; role = "signer"; profiles = [ "release", "tokens" ]; },
    { identity = "spiffe://credsign.test/web-deployer"; role = "signer"; profiles = [ "tokens" ];
      rate = 0.001; burst = 2; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ "release" ]; }'

# the profile keys, made before the daemon's first start as an operator
# does (credsign-admin key generate --profile), with a configuration of
# their own: it_setup starts the daemon right after writing its own
pre=$STATE/it-signing-api-pre
rm -rf "$pre"
mkdir -p "$pre"
cat > "$pre/credsignd.conf" <<CONF
server = { listen = "127.0.0.1:1"; public_base_url = "https://127.0.0.1:1"; presets_file = "$src/conf/presets.conf"; };
tls = { cert = "$STATE/pki/server.pem"; key = "$STATE/pki/server.key"; ca = "$STATE/pki/ca.pem"; };
pkcs11 = { module = "$SOFTHSM"; token_uri = "pkcs11:token=cstest"; pin_file = "$TOKEN_DIR/user.pin";
           signing_key = "pkcs11:token=cstest;object=it-es256-signing-api"; validation = { program = "none"; }; };
store = { path = "$pre/credsign.db"; };
$SIGNING_GROUP
CONF
for k in release tokens locked; do
	"$BUILD/bin/credsign-admin" --config "$pre/credsignd.conf" key generate --label "it-sapi-$k" --profile "$k" \
		> /dev/null || { echo "cannot generate the $k profile key"; exit 1; }
done

EXTRA_CONF="$SIGNING_GROUP audit = { checkpoint_seconds = 1; };" it_setup signing-api || exit 1

sign() { call "$1" POST /api/sign "$2"; }
sql() { sqlite3 "$db" "$1"; }
DIGEST=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
JWS_ITEM='{"profile":"release","format":"jws","payload":{"artifact":"app.tar.gz"}}'
DIGEST_ITEM='{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}}'
INTOTO=application/vnd.in-toto+json

# refused_entry PROFILE FORMAT CODE [WHO]: the newest entry is that refusal
# (action sign, outcome refused, error_code CODE, object "profile=P
# format=F" (a refusal before the input is read adds the reason), actor WHO)
refused_entry() {
	local who=${4:-ci-deployer} got
	got=$(sql "SELECT action || '|' || outcome || '|' || error_code || '|' || actor || '|' || object
	           FROM audit_log ORDER BY seq DESC LIMIT 1")
	[ "$got" = "sign|refused|$3|spiffe://credsign.test/$who|profile=$1 format=$2" ] ||
		[[ "$got" == "sign|refused|$3|spiffe://credsign.test/$who|profile=$1 format=$2: "* && $3 == forbidden ]] || {
		echo "  newest entry: $got"
		return 1
	}
}
# post_file WHO PATH FILE: POST a body from a file (a command line argument
# holds at most 128 KiB); "STATUS BODY" like call
post_file() {
	local args
	read -r -a args <<< "$(client "$1")"
	curl -s -o "$work/out" -w '%{http_code}' -X POST "${args[@]}" -H 'Content-Type: application/json' \
		--data-binary "@$3" "$url$2"
	echo -n " "
	cat "$work/out"
}
# refused_file WHO PATH FILE STATUS CODE [MENTION]
refused_file() {
	local got
	got=$(post_file "$1" "$2" "$3")
	[[ "$got" == "$4 "* && "$got" == *"\"code\":\"$5\""* && "$got" == *"${6:-}"* ]] || {
		echo "  expected $4 $5, got: ${got:0:300}"
		return 1
	}
}
# refusal WHO BODY STATUS CODE PROFILE FORMAT
refusal() {
	expect_error "$1" POST /api/sign "$2" "$3" "$4" && refused_entry "$5" "$6" "$4" "$1"
}

# ---- each refusal: status, code, audit entry -------------------------------------
check "unknown profile: 400 unknown_profile, audited" \
	refusal ci-deployer '{"profile":"nope","format":"jws","payload":{}}' 400 unknown_profile nope jws
check "format not allowed by the profile: 400 format_not_allowed, audited" \
	refusal ci-deployer '{"profile":"tokens","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}}' \
	400 format_not_allowed tokens digest
check "an unknown format: 400 format_not_allowed, audited" \
	refusal ci-deployer '{"profile":"release","format":"cms","payload":{}}' 400 format_not_allowed release cms
check "payload type not allowed: 400 payload_type_not_allowed, audited" \
	refusal ci-deployer '{"profile":"release","format":"dsse","payload_type":"text/plain","payload":"aGk="}' \
	400 payload_type_not_allowed release dsse
big_b64=$(head -c 1025 /dev/zero | base64 -w0)
check "a DSSE payload over max_payload_bytes (1025 of 1024 bytes): 413 payload_too_large, audited" \
	refusal ci-deployer '{"profile":"release","format":"dsse","payload_type":"'$INTOTO'","payload":"'$big_b64'"}' \
	413 payload_too_large release dsse
big_json=$(python3 -c 'import json; print(json.dumps({"x": "a" * 1020}, separators=(",", ":")))')
check "a JWS payload over max_payload_bytes: 413 payload_too_large, audited" \
	refusal ci-deployer '{"profile":"release","format":"jws","payload":'"$big_json"'}' 413 payload_too_large release jws
fits_json=$(python3 -c 'import json; print(json.dumps({"x": "a" * 1016}, separators=(",", ":")))')
signed() { local got; got=$(sign "$1" "$2"); [[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }; }
check "a JWS payload of exactly max_payload_bytes is signed" \
	signed ci-deployer '{"profile":"release","format":"jws","payload":'"$fits_json"'}'
for claim in iss sub iat exp nbf jti; do
	check "reserved claim '$claim' in a JWS payload: 400 reserved_claim, audited" \
		refusal ci-deployer '{"profile":"release","format":"jws","payload":{"'$claim'":"x"}}' 400 reserved_claim \
		release jws
done
check "an identity without a signer grant: 403 forbidden before its input is read, audited" \
	refusal stranger '{"profile":"release","format":"jws","payload":{}}' 403 forbidden release jws
check "a signer of other profiles: 403 forbidden for this one, audited" \
	refusal ci-deployer '{"profile":"locked","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}}' \
	403 forbidden locked digest
check "a member the format does not take: 400 unknown_field, audited" \
	refusal ci-deployer '{"profile":"release","format":"jws","payload":{},"typ":"x"}' 400 unknown_field release jws
check "a digest that is not 32 bytes: 400 invalid_field, audited" \
	refusal ci-deployer '{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"abcd"}}' \
	400 invalid_field release digest
check "DSSE payload not standard base64: 400 invalid_field, audited" \
	refusal ci-deployer '{"profile":"release","format":"dsse","payload_type":"'$INTOTO'","payload":"aGk"}' \
	400 invalid_field release dsse

# ---- rate: each item one token of the allowing grant ---------------------------
rate_batch() {
	local got item='{"profile":"tokens","format":"jws","payload":{"n":1}}'
	got=$(sign web-deployer '{"items":['"$item,$item,$item"']}')
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	python3 - "${got#200 }" <<'PY'
import json, sys
items = json.loads(sys.argv[1])["items"]
assert len(items) == 3, items
assert "jws" in items[0] and "jws" in items[1], items
assert items[2] == {"error": items[2]["error"], "status": 429} and items[2]["error"]["code"] == "rate_limited", items
PY
}
check "a batch of 3 against a bucket of 2: two signed, the third 429 rate_limited" rate_batch
rate_single() {
	local args
	read -r -a args <<< "$(client web-deployer)"
	curl -s -D "$work/rl.h" -o "$work/rl.json" "${args[@]}" -H "Content-Type: application/json" \
		--data-binary '{"profile":"tokens","format":"jws","payload":{}}' "$url/api/sign" > /dev/null &&
		grep -qi '^HTTP/1.1 429' "$work/rl.h" && grep -qi '^Retry-After: [1-9]' "$work/rl.h" &&
		grep -q '"code":"rate_limited"' "$work/rl.json" && refused_entry tokens jws rate_limited web-deployer
}
check "rate_limited single request: 429 with Retry-After, audited" rate_single

# ---- the whole request ---------------------------------------------------------------
batch_too_large() {
	local before
	before=$(sql "SELECT max(seq) FROM audit_log")
	expect_error ci-deployer POST /api/sign '{"items":[{},{},{},{},{},{}]}' 413 batch_too_large &&
		[ "$(sql "SELECT count(*) || '|' || max(action) || '|' || max(error_code) || '|' || max(object)
		          FROM audit_log WHERE seq > $before")" = "1|sign|batch_too_large|/api/sign" ]
}
check "a batch over signing.batch_max: 413 batch_too_large, one entry for the request" batch_too_large
check "a member beside items: 400 unknown_field" \
	expect_error ci-deployer POST /api/sign '{"items":[{}],"profile":"release"}' 400 unknown_field
# a body over server.max_body_bytes (65536) but within signing.max_request_bytes reaches the decoder
body_of_size() { # body_of_size FILE PREFIX N: PREFIX, N letters, then "}}
	{ printf '%s' "$2"; head -c "$3" /dev/zero | tr '\0' a; printf '"}}'; } > "$1"
}
body_of_size "$work/sign-100k.json" '{"profile":"release","format":"jws","payload":{"x":"' 100000
check "/api/sign takes a body over server.max_body_bytes up to signing.max_request_bytes (then the profile's limit)" \
	eval 'refused_file ci-deployer /api/sign "$work/sign-100k.json" 413 payload_too_large &&
		refused_entry release jws payload_too_large'
body_of_size "$work/generate-100k.json" '{"preset":"soc2","x":{"x":"' 100000
check "/api/generate keeps server.max_body_bytes: 413 body_too_large" \
	refused_file ci-deployer /api/generate "$work/generate-100k.json" 413 body_too_large server.max_body_bytes
body_of_size "$work/sign-210k.json" '{"profile":"release","format":"jws","payload":{"x":"' 210000
check "/api/sign over signing.max_request_bytes: 413 body_too_large naming it" \
	refused_file ci-deployer /api/sign "$work/sign-210k.json" 413 body_too_large signing.max_request_bytes
body_of_size "$work/generate-300k.json" '{"preset":"soc2","x":{"x":"' 300000
check "a body over four times server.max_body_bytes on another route: 413 (only /api/sign may send more)" \
	refused_file ci-deployer /api/generate "$work/generate-300k.json" 413 body_too_large "only POST /api/sign"

# ---- a batch of good and bad items ------------------------------------------------------
before=$(sql "SELECT max(seq) FROM audit_log")
mixed() {
	local got body
	body='{"items":['"$JWS_ITEM"',{"profile":"nope","format":"jws","payload":{}},'
	body+='{"profile":"release","format":"dsse","payload_type":"'$INTOTO'","payload":"'$(printf '{"_type":"x"}' | base64 -w0)'"},'
	body+='{"profile":"release","format":"jws","payload":{"jti":"mine"}},'"$DIGEST_ITEM"']}'
	got=$(sign ci-deployer "$body")
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	echo "${got#200 }" > "$work/mixed.json"
	sqlite3 -json "$db" "SELECT seq, ts, actor, role, action, object, project, environment, outcome, error_code
	                     FROM audit_log WHERE seq > $before ORDER BY seq" > "$work/mixed-entries.json"
	sqlite3 -json "$db" "SELECT id, profile, format, requester, created_at, signed_sha256, kid, audit_seq
	                     FROM signatures WHERE audit_seq > $before ORDER BY audit_seq" > "$work/mixed-records.json"
	python3 - "$work/mixed.json" "$work/mixed-entries.json" "$work/mixed-records.json" "$DIGEST" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
entries = json.load(open(sys.argv[2]))
records = {r["id"]: r for r in json.load(open(sys.argv[3]))}
digest = sys.argv[4]
assert len(items) == 5, items
ok = [0, 2, 4]
assert [("error" in i) for i in items] == [False, True, False, True, False], items
assert items[1]["status"] == 400 and items[1]["error"]["code"] == "unknown_profile", items[1]
assert items[3]["status"] == 400 and items[3]["error"]["code"] == "reserved_claim", items[3]
assert set(items[0]) == {"signature_id", "kid", "seq", "profile", "format", "jws"}, items[0]
assert set(items[2]) == {"signature_id", "kid", "seq", "profile", "format", "envelope"}, items[2]
assert set(items[4]) == {"signature_id", "kid", "seq", "profile", "format", "signature", "signature_der", "alg"}
assert items[4]["alg"] == "ES256" and items[2]["envelope"]["signatures"][0]["keyid"] == items[2]["kid"]
# every item one entry, all written together: consecutive seqs, in order
assert len(entries) == 5, entries
seqs = [e["seq"] for e in entries]
assert seqs == list(range(seqs[0], seqs[0] + 5)), seqs
for i, e in zip(items, entries):
    assert e["action"] == "sign" and e["actor"] == "spiffe://credsign.test/ci-deployer", e
    assert e["project"] is None and e["environment"] is None, e
    if "error" in i:
        assert e["outcome"] == "refused" and e["error_code"] == i["error"]["code"], (i, e)
        continue
    assert e["seq"] == i["seq"] and e["outcome"] == "success" and e["role"] == "signer", (i, e)
    r = records[i["signature_id"]]
    assert r["audit_seq"] == e["seq"] and r["created_at"] == e["ts"] and r["kid"] == i["kid"], (r, e)
    want = "%s profile=release format=%s kid=%s sha256=%s" % (i["signature_id"], i["format"], i["kid"],
                                                                r["signed_sha256"])
    assert e["object"] == want, (e["object"], want)
assert records[items[4]["signature_id"]]["signed_sha256"] == digest
assert entries[1]["object"] == "profile=nope format=jws" and entries[3]["object"] == "profile=release format=jws"
assert len(records) == 3, records
PY
}
check "a batch of good and bad items: each answered in order, one entry each in one write, records match" mixed

# ---- GET /api/signatures/{id} -------------------------------------------------------------
rel_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items"][2]["signature_id"])' "$work/mixed.json")
tok_id=$(json_field "$(sign ci-deployer '{"profile":"tokens","format":"jws","payload":{"a":1}}' | cut -d' ' -f2-)" signature_id)
record_ok() { # record_ok WHO ID
	local got
	got=$(call "$1" GET "/api/signatures/$2")
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	python3 - "${got#200 }" "$work/mixed.json" "$2" <<'PY'
import base64, json, sys
rec = json.loads(sys.argv[1])
assert rec["signature_id"] == sys.argv[3]
keys = {"signature_id", "profile", "format", "requester", "created_at", "signed_sha256", "kid", "signature", "audit_seq"}
if rec["profile"] == "release":
    ans = json.load(open(sys.argv[2]))["items"][2]
    assert set(rec) == keys | {"signature_der", "payload_type", "payload"}, rec
    assert rec["format"] == "dsse" and rec["payload_type"] == "application/vnd.in-toto+json", rec
    assert base64.b64decode(rec["payload"]) == b'{"_type":"x"}', rec  # the profile stores payloads
    assert json.loads(rec["signature"]) == ans["envelope"] and rec["audit_seq"] == ans["seq"], rec
    assert rec["signature_der"] == ans["envelope"]["signatures"][0]["sig"]
else:
    assert set(rec) == keys, rec  # tokens stores no payload
assert rec["requester"] == "spiffe://credsign.test/ci-deployer"
PY
}
check "GET /api/signatures/{id}: the signer reads its profile's record (payload stored by the profile)" \
	record_ok ci-deployer "$rel_id"
check "GET /api/signatures/{id}: an auditor with the profile reads it" record_ok auditor "$rel_id"
check "GET /api/signatures/{id}: a record without stored payload has none" record_ok ci-deployer "$tok_id"
read_refused() { # read_refused WHO ID
	expect_error "$1" GET "/api/signatures/$2" "" 403 forbidden &&
		[ "$(sql "SELECT action || '|' || outcome || '|' || error_code || '|' || actor FROM audit_log
		          ORDER BY seq DESC LIMIT 1")" = "signature.read|refused|forbidden|spiffe://credsign.test/$1" ]
}
check "GET /api/signatures/{id}: an auditor without that profile is refused, audited" read_refused auditor "$tok_id"
check "GET /api/signatures/{id}: a signer of another profile is refused, audited" read_refused web-deployer "$rel_id"
check "GET /api/signatures/{id}: an operator is refused, audited" read_refused operator "$rel_id"
check "GET /api/signatures/{id}: an identity without a grant is refused, audited" read_refused stranger "$rel_id"
check "GET /api/signatures/{id}: an unknown id is 404 not_found" \
	expect_error ci-deployer GET /api/signatures/Abcdefghijklmnopqrstu_ "" 404 not_found
read_audited() {
	call auditor GET "/api/signatures/$rel_id" > /dev/null &&
		[ "$(sql "SELECT action || '|' || outcome || '|' || object FROM audit_log ORDER BY seq DESC LIMIT 1")" = \
		  "signature.read|success|$rel_id" ]
}
check "GET /api/signatures/{id}: a read is audited (signature.read, its id)" read_audited

# ---- the JWKS per profile ---------------------------------------------------------------------
jwks() { curl -s $(client stranger) "$url/.well-known/jwks.json$1"; }
cert_kid=$(sql "SELECT kid FROM signing_keys WHERE profile IS NULL AND status = 'active'")
rel_kid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items"][0]["kid"])' "$work/mixed.json")
jwks_apart() {
	jwks "" > "$work/jwks-certs.json" && jwks "?profile=release" > "$work/jwks-release.json" &&
		jwks "?profile=locked" > "$work/jwks-locked.json" || return 1
	python3 - "$work/jwks-certs.json" "$work/jwks-release.json" "$work/jwks-locked.json" "$cert_kid" "$rel_kid" <<'PY'
import json, sys
certs, rel, locked = ([k["kid"] for k in json.load(open(p))["keys"]] for p in sys.argv[1:4])
cert_kid, rel_kid = sys.argv[4:6]
assert cert_kid and rel_kid and cert_kid != rel_kid
assert certs == [cert_kid], certs
assert rel == [rel_kid], rel
assert len(locked) == 1 and locked[0] not in (cert_kid, rel_kid), locked
PY
}
check "the profile's JWKS lists its key and not the certificate key; the certificate JWKS the reverse" jwks_apart
check "JWKS of an unknown profile: 404 unknown_profile" \
	expect_error stranger GET '/.well-known/jwks.json?profile=nope' "" 404 unknown_profile
check "JWKS of a name that cannot be a profile: 404 unknown_profile" \
	expect_error stranger GET '/.well-known/jwks.json?profile=Release' "" 404 unknown_profile
check "JWKS with another parameter: 400 unknown_field" \
	expect_error stranger GET '/.well-known/jwks.json?kid=x' "" 400 unknown_field
check "the rollover statements per profile: 200, none yet" \
	test "$(call stranger GET '/.well-known/credsign-rollover?profile=release')" = '200 {"rollovers":[]}'
check "rollover statements of an unknown profile: 404 unknown_profile" \
	expect_error stranger GET '/.well-known/credsign-rollover?profile=nope' "" 404 unknown_profile

verify_log() {
	sleep 1.5 # the checkpoint timer covers the newest entries
	"${admin[@]}" audit verify > "$work/verify.out" 2>&1 || { tail -5 "$work/verify.out"; return 1; }
}
check "credsign-admin audit verify: the log with the signing entries verifies" verify_log

# ---- the certificate key as a profile key: refused at start -------------------------------
sed 's|key = "pkcs11:token=cstest;object=it-sapi-locked"|key = "pkcs11:object=it-es256-signing-api;token=cstest"|' \
	"$conf" > "$work/certkey.conf"
cert_key_refused() {
	! "$BUILD/bin/credsignd" --check-config "$work/certkey.conf" > "$work/certkey.out" 2>&1 &&
		grep -q "signing.profiles" "$work/certkey.out"
}
check "the certificate key configured as a profile key: --check-config refuses it, naming the setting" cert_key_refused

finish
