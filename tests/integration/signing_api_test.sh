#!/usr/bin/env bash
# POST /api/sign, GET /api/signatures/{id} and the per-profile JWKS over
# real mTLS (curl), against a daemon with three signing profiles:
#  - each refusal answers its status and code and is audited (action sign,
#    outcome refused, error_code the code, object "profile=P format=F"):
#    unknown_profile, format_not_allowed, payload_type_not_allowed,
#    payload_too_large, reserved_claim, forbidden (no signer grant at all,
#    and a signer grant for other profiles), rate_limited (each item pays
#    one token), decoding refusals (unknown_field, invalid_field);
#  - refusals grouped per request: one entry per outcome, code, profile
#    (when configured) and format (when jws, dsse or digest) (the first such
#    item's object, " items=N" when N > 1): a batch of 100 unknown profiles
#    is one entry, a batch over a rate limit one rate_limited entry, a batch
#    refused on two profiles one entry per profile; signed items keep one
#    entry each;
#  - the whole request's refusals: batch_too_large, body_too_large (the
#    signing limit for /api/sign only: the other routes keep
#    server.max_body_bytes);
#  - a batch of good and bad items: each answered or refused in order, every
#    item one entry, all written together (consecutive seqs), each signed
#    item's record carrying its entry's seq and time;
#  - GET /api/signatures/{id}: the signer and an auditor of the profile read
#    it; others are refused (403, audited), an unknown id is 404; a record
#    holds no payload unless the profile stores it (a JWS record is the
#    detached form HEADER..SIGNATURE, a DSSE record the sig): a token
#    profile's record is no bearer token; with store_payload the JWS
#    rebuilds from the record and verifies (python3-jwcrypto);
#  - a JWS's jti is 128 random bits (base64url, 22 characters), not the
#    signature id, and kept nowhere: not in the record, the audit log, the
#    store (sqlite .dump) or the daemon's log;
#  - a key compromised between signing and the write (the store locked
#    while the item is signed, the key compromised in the same
#    transaction): the item answers 503 no_active_key, its signature is
#    discarded, the refusal audited; the other items of the batch signed;
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

SIGNING_GROUP='signing = { max_request_bytes = 200000; batch_max = 100; profiles = (
    { name = "release"; key = "pkcs11:token=cstest;object=it-sapi-release";
      formats = [ "jws", "dsse", "digest" ]; typ = "release+jwt";
      payload_types = [ "application/vnd.in-toto+json" ]; max_payload_bytes = 1024; store_payload = true; },
    { name = "tokens"; key = "pkcs11:token=cstest;object=it-sapi-tokens";
      formats = [ "jws" ]; typ = "JWT"; max_payload_bytes = 1024; },
    { name = "locked"; key = "pkcs11:token=cstest;object=it-sapi-locked"; formats = [ "digest" ]; },
    { name = "doomed"; key = "pkcs11:token=cstest;object=it-sapi-doomed"; formats = [ "digest" ]; }
  ); };'
# ci-deployer signs with release, tokens and doomed (whose key the test
# compromises); web-deployer with tokens, one token every 1000 s, a bucket
# of 2; the auditor reads release's records
GRANTS="$DEFAULT_GRANTS"',
    { identity = "spiffe://credsign.test/ci-deployer"; role = "signer"; profiles = [ "release", "tokens", "doomed" ]; },
    { identity = "spiffe://credsign.test/web-deployer"; role = "signer"; profiles = [ "tokens" ];
      rate = 0.001; burst = 2; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ "release" ]; }'

# the profile keys, made before the daemon's first start (lib.sh)
profile_keys signing-api "$SIGNING_GROUP" it-sapi release tokens locked doomed || exit 1

# (a write waits up to 10 s for the store: the compromise test holds it locked)
EXTRA_CONF="$SIGNING_GROUP audit = { checkpoint_seconds = 1; write_timeout_ms = 10000; };" it_setup signing-api ||
	exit 1

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
rate_grouped() { # the bucket is empty now: every item refused, one entry for them all
	local before got item='{"profile":"tokens","format":"jws","payload":{"n":2}}'
	before=$(sql "SELECT max(seq) FROM audit_log")
	got=$(sign web-deployer '{"items":['"$item,$item,$item,$item"']}')
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	python3 - "${got#200 }" <<'PY' || return 1
import json, sys
items = json.loads(sys.argv[1])["items"]
assert len(items) == 4 and all(i["status"] == 429 and i["error"]["code"] == "rate_limited" for i in items), items
PY
	got=$(sql "SELECT count(*) || '|' || max(outcome) || '|' || max(error_code) || '|' || max(object) || '|' ||
	           max(actor) FROM audit_log WHERE seq > $before")
	[ "$got" = "1|refused|rate_limited|profile=tokens format=jws items=4|spiffe://credsign.test/web-deployer" ] ||
		{ echo "  entries: $got"; return 1; }
}
check "a batch of 4 over the rate limit: each 429 rate_limited, one entry (items=4)" rate_grouped

# ---- the whole request ---------------------------------------------------------------
batch_too_large() {
	local before
	before=$(sql "SELECT max(seq) FROM audit_log")
	expect_error ci-deployer POST /api/sign "{\"items\":[$(printf '{},%.0s' $(seq 100)){}]}" 413 batch_too_large &&
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

# ---- refusals grouped per request: one entry per distinct code --------------------------
hundred_unknown() {
	local before body got
	before=$(sql "SELECT max(seq) FROM audit_log")
	body=$(python3 -c 'import json; print(json.dumps({"items": [{"profile": "nope%d" % i, "format": "jws",
	                   "payload": {"n": i}} for i in range(100)]}))')
	got=$(sign ci-deployer "$body")
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	python3 - "${got#200 }" <<'PY' || return 1
import json, sys
items = json.loads(sys.argv[1])["items"]
assert len(items) == 100 and all(i["status"] == 400 and i["error"]["code"] == "unknown_profile" for i in items)
PY
	got=$(sql "SELECT count(*) || '|' || max(action) || '|' || max(outcome) || '|' || max(error_code) || '|' ||
	           max(object) FROM audit_log WHERE seq > $before")
	[ "$got" = "1|sign|refused|unknown_profile|profile=nope0 format=jws items=100" ] ||
		{ echo "  entries: $got"; return 1; }
}
check "a batch of 100 unknown profiles: each 400 unknown_profile, one entry (the first's object, items=100)" \
	hundred_unknown
grouped() {
	local before body got
	before=$(sql "SELECT max(seq) FROM audit_log")
	body='{"items":['"$DIGEST_ITEM"',{"profile":"nope","format":"jws","payload":{}},'
	body+='{"profile":"release","format":"cms","payload":{}},'
	body+='{"profile":"zzz","format":"jws","payload":{}},'"$JWS_ITEM"','
	body+='{"profile":"other","format":"jws","payload":{}},'
	body+='{"profile":"release","format":"jws","payload":{},"typ":"x"}]}'
	got=$(sign ci-deployer "$body")
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	echo "${got#200 }" > "$work/grouped.json"
	sqlite3 -json "$db" "SELECT seq, outcome, error_code, object FROM audit_log WHERE seq > $before ORDER BY seq" \
		> "$work/grouped-entries.json"
	python3 - "$work/grouped.json" "$work/grouped-entries.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
entries = json.load(open(sys.argv[2]))
codes = [i["error"]["code"] if "error" in i else None for i in items]
assert codes == [None, "unknown_profile", "format_not_allowed", "unknown_profile", None, "unknown_profile",
                 "unknown_field"], codes
got = [(e["outcome"], e["error_code"], e["object"].split(" sha256=")[0]) for e in entries]
# the items refused before or by the access rules (malformed, an unknown
# format or profile) are one entry whatever their codes, the first's
want = [("success", None, "%s profile=release format=digest kid=%s" % (items[0]["signature_id"], items[0]["kid"])),
        ("refused", "unknown_profile",
         "profile=nope format=jws items=5 codes=unknown_profile:3,format_not_allowed:1,unknown_field:1"),
        ("success", None, "%s profile=release format=jws kid=%s" % (items[4]["signature_id"], items[4]["kid"]))]
assert got == want, got
seqs = [e["seq"] for e in entries]
assert seqs == list(range(seqs[0], seqs[0] + 3)), seqs  # one write
assert items[0]["seq"] == seqs[0] and items[4]["seq"] == seqs[2], (items, seqs)
PY
}
check "a batch of signed items and refusals: signed items one entry each, refusals of allowed items one per code, the others one, in order" grouped
per_profile() { # the same codes on two profiles: one entry per profile (and per known format)
	local before body got big
	before=$(sql "SELECT max(seq) FROM audit_log")
	big='{"x":"'$(head -c 1020 /dev/zero | tr '\0' a)'"}'
	body='{"items":[{"profile":"release","format":"jws","payload":'"$big"'},'
	body+='{"profile":"tokens","format":"jws","payload":'"$big"'},'
	body+='{"profile":"release","format":"jws","payload":'"$big"'},'
	body+='{"profile":"tokens","format":"jws","payload":'"$big"'},'
	body+='{"profile":"release","format":"cms","payload":{}},{"profile":"release","format":"xyz","payload":{}},'
	body+='{"profile":"tokens","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}},'
	body+='{"profile":"nope1","format":"jws","payload":{}},{"profile":"nope2","format":"jws","payload":{}},'
	body+='{"profile":"nope3","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}},'
	body+='{"profile":"locked","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}}]}'
	got=$(sign ci-deployer "$body")
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	echo "${got#200 }" > "$work/per-profile.json"
	sqlite3 -json "$db" "SELECT outcome, error_code, object FROM audit_log WHERE seq > $before ORDER BY seq" \
		> "$work/per-profile-entries.json"
	python3 - "$work/per-profile.json" "$work/per-profile-entries.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
entries = json.load(open(sys.argv[2]))
codes = [i["error"]["code"] for i in items]
assert codes == ["payload_too_large"] * 4 + ["format_not_allowed"] * 3 + ["unknown_profile"] * 3 + ["forbidden"], codes
got = [(e["outcome"], e["error_code"], e["object"]) for e in entries]
want = [("refused", "payload_too_large", "profile=release format=jws items=2"),
        ("refused", "payload_too_large", "profile=tokens format=jws items=2"),
        # unknown formats, unknown profiles, profiles without a grant: one
        # entry whatever the names (a caller cannot grow the log with what
        # it may not do), the first's
        ("refused", "format_not_allowed",
         "profile=release format=cms items=6 codes=format_not_allowed:2,unknown_profile:3,forbidden:1"),
        # a format the allowed profile does not allow: its own
        ("refused", "format_not_allowed", "profile=tokens format=digest")]
assert got == want, got
PY
}
check "a batch refused on two profiles: one entry per allowed profile (and format); unknown or forbidden profiles one entry" per_profile

# ---- GET /api/signatures/{id} -------------------------------------------------------------
mixed_id() { # mixed_id N: the signature id of item N of the mixed batch
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items"][int(sys.argv[2])]["signature_id"])' \
		"$work/mixed.json" "$1"
}
rel_id=$(mixed_id 2)     # the DSSE of release (store_payload)
rel_jws_id=$(mixed_id 0) # the JWS of release
sign ci-deployer '{"profile":"tokens","format":"jws","payload":{"a":"bearer-claim-text"}}' | cut -d' ' -f2- \
	> "$work/tok.json"
tok_id=$(json_field "$(cat "$work/tok.json")" signature_id)
record_ok() { # record_ok WHO ID
	local got
	got=$(call "$1" GET "/api/signatures/$2")
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	python3 - "${got#200 }" "$work/mixed.json" "$2" "$work/tok.json" <<'PY'
import base64, json, sys
rec = json.loads(sys.argv[1])
assert rec["signature_id"] == sys.argv[3]
keys = {"signature_id", "profile", "format", "requester", "created_at", "signed_sha256", "kid", "signature", "audit_seq"}
if rec["profile"] == "release":
    ans = json.load(open(sys.argv[2]))["items"][2]
    assert set(rec) == keys | {"signature_der", "payload_type", "payload"}, rec
    assert rec["format"] == "dsse" and rec["payload_type"] == "application/vnd.in-toto+json", rec
    assert base64.b64decode(rec["payload"]) == b'{"_type":"x"}', rec  # the profile stores payloads
    # the record holds the sig (base64 DER), not the envelope
    sig = ans["envelope"]["signatures"][0]["sig"]
    assert rec["signature"] == sig and rec["signature_der"] == sig and rec["audit_seq"] == ans["seq"], rec
else:
    ans = json.load(open(sys.argv[4]))
    assert set(rec) == keys, rec  # tokens stores no payload
    head, payload, sig = ans["jws"].split(".")
    assert rec["signature"] == head + ".." + sig, rec  # RFC 7515 Appendix F: the payload detached
    assert payload not in sys.argv[1] and "bearer-claim-text" not in sys.argv[1], rec
assert rec["requester"] == "spiffe://credsign.test/ci-deployer"
PY
}
check "GET /api/signatures/{id}: the signer reads its profile's record (payload stored by the profile)" \
	record_ok ci-deployer "$rel_id"
check "GET /api/signatures/{id}: an auditor with the profile reads it" record_ok auditor "$rel_id"
check "GET /api/signatures/{id}: a token profile's record is the detached JWS, no payload (no bearer token)" \
	record_ok ci-deployer "$tok_id"
no_payload_stored() { # in the store itself: no envelope, no attached JWS, no payload of tokens
	local got
	got=$(sql "SELECT count(*) FROM signatures WHERE signature LIKE '%{%'
	           OR (format = 'jws' AND signature NOT GLOB '[A-Za-z0-9_-]*..[A-Za-z0-9_-]*')
	           OR (format = 'jws' AND signature GLOB '*.[A-Za-z0-9_-]*.*')
	           OR (profile = 'tokens' AND payload IS NOT NULL)")
	[ "$got" = 0 ] && [ "$(sql "SELECT count(*) FROM signatures WHERE profile = 'tokens'")" -gt 0 ] ||
		{ echo "  $got records hold more"; return 1; }
}
check "the store holds no envelope, no attached JWS and no payload the profile does not store" no_payload_stored
jws_cannot_rebuild() { # store_payload: the caller's payload is kept, not the claims as signed (no jti)
	local got
	got=$(call auditor GET "/api/signatures/$rel_jws_id")
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	/usr/bin/python3 - "${got#200 }" "$work/mixed.json" <<'PY'
import base64, hashlib, json, sys
rec = json.loads(sys.argv[1])
ans = json.load(open(sys.argv[2]))["items"][0]
assert rec["format"] == "jws" and rec["signature_id"] == ans["signature_id"], rec
head, mid, sig = ans["jws"].split(".")
assert rec["signature"] == head + ".." + sig, rec
claims = json.loads(base64.urlsafe_b64decode(mid + "=" * (-len(mid) % 4)))
stored = json.loads(base64.b64decode(rec["payload"], validate=True))
added = {"iss", "sub", "iat", "jti", "exp", "aud"}
assert stored == {k: v for k, v in claims.items() if k not in added}, (stored, claims)
assert not (added & set(stored)), stored
# so the record does not rebuild the token: the signing input differs
mid2 = base64.urlsafe_b64encode(base64.b64decode(rec["payload"])).rstrip(b"=").decode()
assert hashlib.sha256((head + "." + mid2).encode()).hexdigest() != rec["signed_sha256"], rec
assert claims["jti"] not in sys.argv[1], rec
PY
}
check "store_payload: a JWS record keeps the caller's payload, not the claims as signed (no jti: no token rebuilt)" \
	jws_cannot_rebuild
jti_nowhere() { # a JWS's jti: random, not the signature id, kept nowhere (tokens stores no payload)
	local got jtis
	got=$(sign ci-deployer '{"items":[{"profile":"tokens","format":"jws","payload":{"a":1}},'"$DIGEST_ITEM"',
	                                  {"profile":"tokens","format":"jws","payload":{"a":1}}]}')
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	jtis=$(python3 - "${got#200 }" <<'PY'
import base64, json, re, sys
items = json.loads(sys.argv[1])["items"]
ids = [i["signature_id"] for i in items]
jtis = []
for i in (items[0], items[2]):
    p = i["jws"].split(".")[1]
    c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", c["jti"]), c
    assert c["jti"] not in ids, (c, ids)
    jtis.append(c["jti"])
assert jtis[0] != jtis[1], jtis
print(*(jtis + ids))
PY
) || return 1
	read -r -a jtis <<< "$jtis"
	for id in "${jtis[@]:2}"; do # the records, as served
		got=$(call ci-deployer GET "/api/signatures/$id")
		[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
		for j in "${jtis[@]:0:2}"; do
			[[ "$got" != *"$j"* ]] || { echo "  jti $j in record $id"; return 1; }
		done
	done
	sqlite3 "$db" .dump > "$work/jti-dump.sql" || return 1
	grep -q -- "${jtis[2]}" "$work/jti-dump.sql" || { echo "  the dump lacks the records"; return 1; }
	for j in "${jtis[@]:0:2}"; do # as text, and as a blob's hex (.dump writes X'..')
		! grep -qiF -e "$j" -e "$(printf '%s' "$j" | od -An -tx1 | tr -d ' \n')" "$work/jti-dump.sql" "$log" ||
			{ echo "  jti $j kept: $(grep -lF -- "$j" "$work/jti-dump.sql" "$log")"; return 1; }
	done
}
check "a JWS's jti: 128 random bits, not the signature id, in no record, audit entry, store or log" jti_nowhere
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

# ---- a key compromised between signing and the write ---------------------------------------
DOOMED_ITEM='{"profile":"doomed","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}}'
compromised_meanwhile() {
	local kid before got lock
	kid=$(sql "SELECT kid FROM signing_keys WHERE profile = 'doomed' AND status = 'active'")
	[ -n "$kid" ] || { echo "  no active key of profile doomed"; return 1; }
	signed ci-deployer "$DOOMED_ITEM" || return 1
	before=$(sql "SELECT max(seq) FROM audit_log")
	# the store locked: the items are signed, then their write waits; the
	# lock's transaction compromises the key and commits, the write goes on
	# (the key watch, polling each second, has not yet emptied the slot)
	{
		echo ".timeout 5000"
		echo "BEGIN IMMEDIATE;"
		sleep 2
		echo "UPDATE signing_keys SET status = 'compromised' WHERE kid = '$kid';"
		echo "COMMIT;"
	} | sqlite3 "$db" &
	lock=$!
	sleep 0.5
	got=$(sign ci-deployer '{"items":['"$DOOMED_ITEM,$DOOMED_ITEM,$DIGEST_ITEM"']}')
	wait "$lock" || { echo "  the locking transaction failed"; return 1; }
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	grep -q "not stored: its key $kid was compromised meanwhile" "$log" ||
		{ echo "  the write did not meet the compromised key (the key watch came first?)"; return 1; }
	sqlite3 -json "$db" "SELECT seq, outcome, error_code, object FROM audit_log WHERE seq > $before AND action = 'sign'
	                     ORDER BY seq" > "$work/doomed-entries.json"
	python3 - "${got#200 }" "$work/doomed-entries.json" "$kid" <<'PY' || return 1
import json, sys
items = json.loads(sys.argv[1])["items"]
entries = json.load(open(sys.argv[2]))
kid = sys.argv[3]
for i in items[:2]:
    assert i["status"] == 503 and i["error"]["code"] == "no_active_key", i
    assert kid in i["error"]["message"] and "compromised" in i["error"]["message"], i
assert "signature" in items[2] and items[2]["profile"] == "release", items[2]
got = [(e["outcome"], e["error_code"], e["object"].split(" ")[0] if e["outcome"] == "success" else e["object"])
       for e in entries]
assert got == [("success", None, items[2]["signature_id"]),
               ("refused", "no_active_key", "profile=doomed format=digest items=2")], got
PY
	[ "$(sql "SELECT count(*) FROM signatures WHERE profile = 'doomed' AND audit_seq > $before")" = 0 ] ||
		{ echo "  a signature of the compromised key was recorded"; return 1; }
}
check "a key compromised between signing and the write: 503 no_active_key, signature discarded, refusal audited" \
	compromised_meanwhile
check "then the profile's key is out of force: 503 no_active_key" \
	eval 'sleep 1.5; expect_error ci-deployer POST /api/sign "$DOOMED_ITEM" 503 no_active_key'

# ---- the certificate key as a profile key: refused at start -------------------------------
sed 's|key = "pkcs11:token=cstest;object=it-sapi-locked"|key = "pkcs11:object=it-es256-signing-api;token=cstest"|' \
	"$conf" > "$work/certkey.conf"
cert_key_refused() {
	! "$BUILD/bin/credsignd" --check-config "$work/certkey.conf" > "$work/certkey.out" 2>&1 &&
		grep -q "signing.profiles" "$work/certkey.out"
}
check "the certificate key configured as a profile key: --check-config refuses it, naming the setting" cert_key_refused

finish
